// The layers of flannel-ts, checked on every `npm test` (npm run lint:deps).
// Arrows go one way: cli → daemon → backend, subnet, iptables → encap, routes → tun,
// and cli → demo, bench → lab; src/util is a leaf every layer may import.
// Type-only imports count (tsPreCompilationDeps): an arrow is an arrow.

const PRODUCT = '^src/(daemon|backend|subnet|iptables|encap|routes|tun|cni|util)/';

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'cli-is-the-top',
      comment: 'src/cli holds entry points and flag parsing; nothing below it may import it (move the shared piece down, e.g. to src/daemon or src/util).',
      severity: 'error',
      from: { path: '^src/(?!cli/)' },
      to: { path: '^src/cli/' },
    },
    {
      name: 'src-not-to-dev-code',
      comment: "Product code never imports the developers' bench/ or the tests.",
      severity: 'error',
      from: { path: '^src/' },
      to: { path: '^(bench|test)/' },
    },
    {
      name: 'unit-not-to-e2e',
      comment: 'Unit tests need no privileges: shared helpers and fixtures belong in test/lib.',
      severity: 'error',
      from: { path: '^test/unit/' },
      to: { path: '^test/e2e/' },
    },
    {
      name: 'util-is-a-leaf',
      comment: 'src/util may be imported by every layer, so it imports none of them.',
      severity: 'error',
      from: { path: '^src/util/' },
      to: { path: '^src/(?!util/)' },
    },
    {
      name: 'product-not-to-lab',
      comment: 'The namespace lab (and its synchronous commands), the demo and the bench are for users and tests, never for the daemon and its layers.',
      severity: 'error',
      from: { path: PRODUCT },
      to: { path: '^src/(lab|demo|bench)/' },
    },
    {
      name: 'nothing-below-the-daemon-imports-it',
      severity: 'error',
      from: { path: '^src/(backend|subnet|iptables|encap|routes|tun|cni|util|lab|demo|bench)/' },
      to: { path: '^src/daemon/' },
    },
    {
      name: 'data-plane-never-imports-etcd',
      comment: 'The data plane (encap, tun, routes) knows leases only through the LeaseTable: no etcd client, no control plane.',
      severity: 'error',
      from: { path: '^src/(encap|tun|routes)/' },
      to: { path: ['^src/(subnet|backend|daemon|iptables|cni)/', '(^|/)node_modules/(etcd3|@grpc)/'] },
    },
    {
      name: 'tun-and-routes-are-the-bottom',
      comment: "The addon's face and the lease table import only src/util.",
      severity: 'error',
      from: { path: '^src/(tun|routes)/' },
      to: { path: '^src/(?!util/|tun/|routes/)' },
    },
    {
      name: 'control-plane-never-touches-packets',
      severity: 'error',
      from: { path: '^src/subnet/' },
      to: { path: '^src/(encap|tun|backend|iptables)/' },
    },
    {
      name: 'daemon-starts-commands-through-util-exec',
      comment:
        'Everything flanneld runs starts commands through src/util/exec.ts (asynchronous, one CommandError). The one exception is backend/kernel.ts, whose ip/bridge -batch coprocesses live as long as the backend.',
      severity: 'error',
      from: { path: '^src/(daemon|backend|subnet|iptables|encap|routes|tun|cli/flanneld[.]ts)', pathNot: '^src/backend/kernel[.]ts$' },
      to: { dependencyTypes: ['core'], path: '^(node:)?child_process$' },
    },
    {
      name: 'daemon-never-loads-cni',
      comment: "The CNI plugin and the lab's CNI runtime run in their own short-lived processes; flanneld does not load them.",
      severity: 'error',
      from: { path: '^src/(daemon|backend|subnet|iptables|encap|routes|tun)/' },
      to: { path: '^src/cni/' },
    },
    {
      name: 'no-runtime-cycles',
      comment: 'A cycle of value imports makes load order matter; type-only cycles are harmless and allowed.',
      severity: 'error',
      from: { pathNot: '(^|/)node_modules/' },
      to: { circular: true, viaOnly: { dependencyTypesNot: ['type-only'] } },
    },
    {
      name: 'no-unresolvable',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true },
    },
    {
      name: 'product-not-to-dev-dependencies',
      comment: 'What src/ loads at run time must be a dependency, not a devDependency (npm ci --omit=dev would break it).',
      severity: 'error',
      from: { path: '^src/' },
      to: { dependencyTypes: ['npm-dev'], dependencyTypesNot: ['type-only'] },
    },
  ],
  options: {
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(dist|build)/' },
  },
};
