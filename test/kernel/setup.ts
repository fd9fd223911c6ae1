// Kernel tests are only meaningful inside the IPVS test VM; anywhere else they fail loudly
// instead of skipping, so a green run always means the real kernel was exercised.
if (process.env.IPVS_VM !== '1') {
  throw new Error('kernel tests run inside the IPVS test VM: use `npm test` or `npm run test:kernel`');
}
if (process.getuid?.() !== 0) {
  throw new Error('kernel tests must run as root inside the VM');
}
