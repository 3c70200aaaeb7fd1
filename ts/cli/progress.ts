// A spinner with the elapsed time on stderr while slow work runs (key generation on a slow
// token). Only on a terminal: piped or redirected stderr gets nothing.
const FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
const TICK_MS = 100;

export async function withProgress<T>(label: string, work: () => Promise<T>, stream: NodeJS.WriteStream = process.stderr): Promise<T> {
  if (!stream.isTTY) return work();
  const start = Date.now();
  let frame = 0;
  const draw = () => stream.write(`\r${FRAMES[frame++ % FRAMES.length]} ${label} ${((Date.now() - start) / 1000).toFixed(1)} s`);
  draw();
  const timer = setInterval(draw, TICK_MS);
  try {
    return await work();
  } finally {
    clearInterval(timer);
    stream.write('\r\x1b[K'); // the line is cleared: what follows starts clean
  }
}
