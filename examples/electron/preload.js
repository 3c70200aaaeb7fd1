/// <reference lib="dom" />
// Preload (sandboxed, context-isolated): a MessagePort cannot go through contextBridge, but
// window.postMessage can transfer it to the page.
const { ipcRenderer } = require('electron');

ipcRenderer.on('pkcs11-port', (event, info) => {
  window.postMessage({ type: 'pkcs11-port', generation: info.generation }, '*', event.ports);
});
