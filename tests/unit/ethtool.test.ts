/**
 * `hw-tc-offload` read through the SIOCETHTOOL ioctl, on the host's loopback
 * (which never has it): no root needed. An unknown device is null (the
 * kernel cannot tell), with ENODEV as the reason; a name that is not an
 * interface name is an error, and nothing is asked.
 */
import assert from "node:assert/strict";
import { EthtoolError, hwTcOffload, queryHwTcOffload } from "../../src/interfaces/ethtool.ts";

/** Open file descriptors of this process. */
function openFds(): number {
  return [...Deno.readDirSync("/proc/self/fd")].length;
}

Deno.test("ethtool: loopback has no hw-tc-offload", () => {
  const answer = queryHwTcOffload("lo");
  if (answer.active === null) {
    console.log(`skipped: the kernel refused the ethtool ioctl on lo (${answer.reason})`);
    return;
  }
  assert.equal(answer.active, false);
  assert.equal(hwTcOffload("lo"), false);
});

Deno.test("ethtool: an unknown device is null, with ENODEV as the reason", () => {
  const device = "mnpnodev0";
  assert.equal(Deno.networkInterfaces().some((i) => i.name === device), false);
  const answer = queryHwTcOffload(device);
  assert.equal(answer.active, null);
  assert.ok(answer.active === null && /ENODEV/.test(answer.reason), JSON.stringify(answer));
  assert.equal(hwTcOffload(device), null);
});

Deno.test("ethtool: a name that cannot be a device is an error, and nothing is opened", () => {
  const before = openFds();
  for (const name of ["", "../lo", "a".repeat(16), "lo;true", "lo\n", "."]) {
    assert.throws(() => hwTcOffload(name), EthtoolError, JSON.stringify(name));
  }
  assert.equal(openFds(), before);
});

Deno.test("ethtool: the socket is closed on every path", () => {
  hwTcOffload("lo"); // libc loaded once, before counting
  const before = openFds();
  for (let i = 0; i < 50; i++) {
    hwTcOffload("lo");
    hwTcOffload("mnpnodev0");
  }
  assert.equal(openFds(), before);
});
