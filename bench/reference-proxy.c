// A yardstick, not part of flannel-ts: a forwarder built the way flannel's
// original udp backend was (its C proxy of 2014): one thread, poll() on the
// TUN device and the UDP socket, one packet per read() and one per sendto(),
// a linear route lookup, TTL decremented on the way out. bench/latency.ts
// compiles it with cc and runs it beside flanneld on the same lab hosts, so
// issue 11's "as fast as a C forwarder" is measured in the same run rather
// than quoted.
//
//   reference-proxy TUN PORT SUBNET/LEN=PEER_IP [...]
//
// Creates TUN (IFF_TUN | IFF_NO_PI), binds UDP PORT on every address and
// sends a packet for SUBNET/LEN to PEER_IP:PORT. Whatever arrives on PORT is
// written into TUN. Prints "ready" on stderr once both are open.
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_ROUTES 64

struct route {
  uint32_t net, mask; // network byte order
  struct sockaddr_in peer;
};

static struct route routes[MAX_ROUTES];
static int nroutes;

static int parse_route(const char *spec, uint16_t port, struct route *r) {
  char buf[64];
  unsigned len;
  struct in_addr net, peer;
  if (strlen(spec) >= sizeof buf) return -1;
  strcpy(buf, spec);
  char *eq = strchr(buf, '='), *slash = strchr(buf, '/');
  if (!eq || !slash || slash > eq) return -1;
  *eq = *slash = 0;
  if (!inet_aton(buf, &net) || sscanf(slash + 1, "%u", &len) != 1 || len > 32 || !inet_aton(eq + 1, &peer)) return -1;
  r->mask = len ? htonl(~0u << (32 - len)) : 0;
  r->net = net.s_addr & r->mask;
  r->peer = (struct sockaddr_in){ .sin_family = AF_INET, .sin_port = htons(port), .sin_addr = peer };
  return 0;
}

// RFC 1624 incremental update for the TTL byte going down by one.
static void decrement_ttl(uint8_t *ip) {
  ip[8]--;
  uint32_t sum = (uint32_t)((ip[10] << 8) | ip[11]) + 0x0100;
  sum = (sum & 0xffff) + (sum >> 16);
  ip[10] = (uint8_t)(sum >> 8);
  ip[11] = (uint8_t)sum;
}

static void tun_to_udp(int tun, int sock, uint8_t *buf, size_t size) {
  ssize_t n = read(tun, buf, size);
  if (n < 20 || (buf[0] >> 4) != 4 || buf[8] <= 1) return; // not IPv4, or TTL would expire
  uint32_t dst;
  memcpy(&dst, buf + 16, 4);
  for (int i = 0; i < nroutes; i++) {
    if ((dst & routes[i].mask) == routes[i].net) {
      decrement_ttl(buf);
      sendto(sock, buf, (size_t)n, 0, (struct sockaddr *)&routes[i].peer, sizeof routes[i].peer);
      return;
    }
  }
}

static void udp_to_tun(int sock, int tun, uint8_t *buf, size_t size) {
  ssize_t n = recv(sock, buf, size, 0);
  if (n >= 20) (void)!write(tun, buf, (size_t)n);
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: %s TUN PORT SUBNET/LEN=PEER_IP [...]\n", argv[0]);
    return 2;
  }
  uint16_t port = (uint16_t)atoi(argv[2]);
  for (int i = 3; i < argc && nroutes < MAX_ROUTES; i++) {
    if (parse_route(argv[i], port, &routes[nroutes++]) < 0) {
      fprintf(stderr, "bad route %s (want SUBNET/LEN=PEER_IP)\n", argv[i]);
      return 2;
    }
  }
  int tun = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
  struct ifreq ifr = { .ifr_flags = IFF_TUN | IFF_NO_PI };
  strncpy(ifr.ifr_name, argv[1], IFNAMSIZ - 1);
  if (tun < 0 || ioctl(tun, TUNSETIFF, &ifr) < 0) {
    perror("tun");
    return 1;
  }
  int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in any = { .sin_family = AF_INET, .sin_port = htons(port) };
  if (sock < 0 || bind(sock, (struct sockaddr *)&any, sizeof any) < 0) {
    perror("udp");
    return 1;
  }
  fprintf(stderr, "ready\n");
  static uint8_t buf[65536];
  struct pollfd fds[2] = { { .fd = tun, .events = POLLIN }, { .fd = sock, .events = POLLIN } };
  for (;;) {
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      perror("poll");
      return 1;
    }
    if (fds[0].revents & POLLIN) tun_to_udp(tun, sock, buf, sizeof buf);
    if (fds[1].revents & POLLIN) udp_to_tun(sock, tun, buf, sizeof buf);
  }
}
