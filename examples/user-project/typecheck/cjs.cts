// Types as a CommonJS module sees them (moduleResolution node16).
import ipvsNetlink = require('ipvs-netlink');
import testing = require('ipvs-netlink/testing');

export async function check(): Promise<void> {
  const ipvs: ipvsNetlink.Ipvs = await ipvsNetlink.Ipvs.open();
  await testing.withNetns(async (ns: testing.Netns) => {
    await ns.sysctl('net.ipv4.ip_forward', 1);
    const out: string = await ns.exec('ip -o link');
    void out;
  });
  const skip: string | false = testing.skipUnlessIpvs();
  void [ipvs, skip];
}
