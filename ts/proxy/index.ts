// The proxy: one virtual PKCS#11 module over every configured module.
export { openProxy, openProxyAsync } from './open.js';
export { ProxyModule, type SessionTarget, type ProxyEvents } from './proxy.js';
export { ProxySession } from './sessions.js';
export { ProxyError, PROXY_NAME, type ProxyErrorCode } from './errors.js';
export { objectTemplate } from './lookup.js';
export type { OpenProxyOptions, ModuleFailure, ProxyStage, ProxyModuleStatus, SlotEventMode, ProxyToken, ProxyObject, FindObjectsOptions, Pin } from './types.js';
