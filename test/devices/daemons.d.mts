// Types for daemons.mjs.
import type { ChildProcess } from 'node:child_process';
export function freePorts(count: number): Promise<number>;
export function until(what: string, cond: () => boolean, ms?: number): Promise<void>;
export function whenListening(child: ChildProcess, ports: number[], log: () => string): Promise<void>;
export function adopt(child: ChildProcess): void;
export function stop(child: ChildProcess): Promise<void>;
