// Seeing masquerade from outside: a UDP listener in an "outside" namespace on
// the underlay reports each datagram's source address, and a pod sends tagged
// datagrams to it. Shared by the iptables and the nftables suites.

import { type ChildProcess, spawn } from 'node:child_process';
import type { Pod } from '../../src/lab/host';
import { waitFor } from '../../src/lab/sh';

/** A UDP listener inside `ns` that reports each datagram's source address. */
export class SourceListener {
  private readonly proc: ChildProcess;
  private out = '';
  constructor(ns: string, ip: string, port: number) {
    const script = `const s = require('dgram').createSocket('udp4'); s.on('message', (m, r) => console.log('from ' + r.address + ' ' + m)); s.bind(${port}, ${JSON.stringify(ip)}, () => console.log('listening'));`;
    this.proc = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', script]);
    this.proc.stdout!.on('data', (d) => (this.out += d));
  }
  ready(): Promise<unknown> {
    return waitFor('listener', () => this.out.includes('listening'), 5000);
  }
  /** Waits for the datagram tagged `tag`; returns its source address. */
  async sourceOf(tag: string): Promise<string> {
    const m = await waitFor(`datagram ${tag}`, () => new RegExp(`from (\\S+) ${tag}$`, 'm').exec(this.out), 5000);
    return m[1];
  }
  stop(): void {
    this.proc.kill();
  }
}

/** Sends one UDP datagram `tag` from inside the pod. */
export function sendUdp(pod: Pod, ip: string, port: number, tag: string): void {
  pod.exec([process.execPath, '-e', `const s = require('dgram').createSocket('udp4'); s.send(${JSON.stringify(tag)}, ${port}, ${JSON.stringify(ip)}, () => s.close());`]);
}
