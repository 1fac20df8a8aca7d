// The data plane's I/O layer: batches, the TUN device, the UDP socket.
export * from './batch';
export { TunDevice, type TunOpenOptions } from './tun-device';
export { UdpSocket, type UdpOffloads, type UdpOpenOptions } from './udp-socket';
export { native, type FlannelTunNative, type PollHandle, type TunOffloads, type TunOpenResult } from './native';
