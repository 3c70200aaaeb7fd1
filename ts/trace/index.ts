export { traceModule, setGlobalTrace, globalTrace, isTraced, stderrSink, type TraceSink } from './trace.js';
