/** Parsing Pods: labels, phase, container ports and the Multus annotations. */
import { show } from "../log/quote.ts";
import { parseIp } from "../net/ip.ts";
import { exact } from "./compact.ts";
import type { ContainerPort, NetworkSelection, NetworkStatus, Pod, PodPhase } from "./types.ts";
import { checkInterfaceName, checkPciAddress, checkPortName } from "./validate.ts";
import {
  describe,
  isObject,
  isPortNumber,
  type JsonObject,
  type ParseResult,
  qualifyNetwork,
  readJsonList,
  readList,
  readMeta,
  readObject,
  readProtocol,
  readString,
  type Reporter,
} from "./reader.ts";

/** Annotation listing the networks a pod asks for. */
export const NETWORKS_ANNOTATION = "k8s.v1.cni.cncf.io/networks";
/** Annotation where Multus reports the pod's attached interfaces. */
export const NETWORK_STATUS_ANNOTATION = "k8s.v1.cni.cncf.io/network-status";
/** Annotation naming the networks a MultiNetworkPolicy applies to. */

function readContainerPorts(spec: JsonObject, r: Reporter): ContainerPort[] {
  const ports: ContainerPort[] = [];
  const containers = readList(spec, "containers", "spec.containers", r) ?? [];
  containers.forEach((container, ci) => {
    if (!isObject(container)) {
      r.add(`spec.containers[${ci}]`, `want an object, got ${describe(container)}`);
      return;
    }
    const list = readList(container, "ports", `spec.containers[${ci}].ports`, r) ?? [];
    list.forEach((port, pi) => {
      const field = `spec.containers[${ci}].ports[${pi}]`;
      if (!isObject(port)) {
        r.add(field, `want an object, got ${describe(port)}`);
        return;
      }
      if (port.name === undefined || port.name === null) return;
      const name = readString(port, "name", `${field}.name`, r);
      const nameProblem = checkPortName(name);
      if (nameProblem) {
        r.add(`${field}.name`, nameProblem);
        return;
      }
      if (!isPortNumber(port.containerPort)) {
        r.add(
          `${field}.containerPort`,
          `want a port number 1-65535, got ${describe(port.containerPort)}`,
        );
        return;
      }
      const protocol = readProtocol(port, `${field}.protocol`, r);
      if (protocol) ports.push({ name, port: port.containerPort, protocol });
    });
  });
  return exact(ports);
}

function parseNetworksAnnotation(text: string, namespace: string, r: Reporter): NetworkSelection[] {
  const field = `metadata.annotations[${NETWORKS_ANNOTATION}]`;
  const trimmed = text.trim();
  if (trimmed === "") return [];
  if (trimmed.startsWith("[") || trimmed.startsWith("{")) {
    const parsed = readJsonList(trimmed, field, r);
    if (!parsed) return [];
    const out: NetworkSelection[] = [];
    parsed.forEach((entry, i) => {
      if (!isObject(entry) || typeof entry.name !== "string") {
        r.add(`${field}[${i}].name`, "want an object with a string name");
        return;
      }
      const ns = typeof entry.namespace === "string" && entry.namespace !== ""
        ? entry.namespace
        : namespace;
      const network = qualifyNetwork(
        entry.name.includes("/") ? entry.name : `${ns}/${entry.name}`,
        ns,
      );
      if (!network) {
        r.add(`${field}[${i}].name`, `invalid network name ${show(entry.name)}`);
        return;
      }
      const selection: NetworkSelection = { network };
      if (typeof entry.interface === "string") selection.interfaceName = entry.interface;
      out.push(selection);
    });
    return exact(out);
  }
  const out: NetworkSelection[] = [];
  trimmed.split(",").forEach((item, i) => {
    const [ref, ifname] = item.trim().split("@");
    const network = qualifyNetwork(ref, namespace);
    if (!network) {
      r.add(`${field}[${i}]`, `invalid network reference ${show(item.trim())}`);
      return;
    }
    out.push(ifname ? { network, interfaceName: ifname } : { network });
  });
  return exact(out);
}

function parseNetworkStatus(text: string, namespace: string, r: Reporter): NetworkStatus[] {
  const field = `metadata.annotations[${NETWORK_STATUS_ANNOTATION}]`;
  const parsed = readJsonList(text, field, r);
  if (!parsed) return [];
  const out: NetworkStatus[] = [];
  parsed.forEach((entry, i) => {
    const at = `${field}[${i}]`;
    if (!isObject(entry)) {
      r.add(at, `want an object, got ${describe(entry)}`);
      return;
    }
    const rawName = readString(entry, "name", `${at}.name`, r);
    const network = qualifyNetwork(rawName, namespace);
    if (!network) {
      r.add(`${at}.name`, `invalid network name ${show(rawName)}; entry skipped`);
      return;
    }
    const interfaceName = readString(entry, "interface", `${at}.interface`, r);
    const isDefault = entry.default === true;
    if (!isDefault || interfaceName !== "") {
      const problem = checkInterfaceName(interfaceName);
      if (problem) {
        r.add(`${at}.interface`, `${problem}; interface rejected`);
        return;
      }
    }
    const ips: string[] = [];
    (readList(entry, "ips", `${at}.ips`, r) ?? []).forEach((ip, j) => {
      const text = typeof ip === "string" ? ip.split("/")[0] : "";
      if (typeof ip !== "string" || parseIp(text) === null) {
        r.add(`${at}.ips[${j}]`, `invalid IP address ${show(ip)}; address ignored`);
        return;
      }
      ips.push(text);
    });
    const status: NetworkStatus = { network, interfaceName, ips: exact(ips), isDefault };
    const mac = readString(entry, "mac", `${at}.mac`, r);
    if (mac !== "") status.mac = mac;
    const deviceInfo = readObject(entry, "device-info", `${at}.device-info`, r);
    const pci = deviceInfo ? readObject(deviceInfo, "pci", `${at}.device-info.pci`, r) : null;
    if (pci) {
      const address = readString(pci, "pci-address", `${at}.device-info.pci.pci-address`, r);
      const problem = checkPciAddress(address);
      if (problem) {
        r.add(`${at}.device-info.pci.pci-address`, `${problem}; interface rejected`);
        return;
      }
      status.pciAddress = address.toLowerCase();
    }
    out.push(status);
  });
  return exact(out);
}

const PHASES: readonly PodPhase[] = ["Pending", "Running", "Succeeded", "Failed", "Unknown"];

/** Parses a Pod. */
export function parsePod(raw: JsonObject): ParseResult<Pod> {
  const { meta, reporter: r } = readMeta(raw, "Pod", true);
  if (!meta) return { value: null, errors: r.errors };
  const spec = readObject(raw, "spec", "spec", r) ?? {};
  const status = readObject(raw, "status", "status", r) ?? {};
  const phaseText = readString(status, "phase", "status.phase", r, "Pending");
  let phase: PodPhase = "Pending";
  if ((PHASES as readonly string[]).includes(phaseText)) phase = phaseText as PodPhase;
  else r.add("status.phase", `unknown phase ${show(phaseText)}`);
  const hostNetwork = spec.hostNetwork === true;
  if (spec.hostNetwork !== undefined && typeof spec.hostNetwork !== "boolean") {
    r.add("spec.hostNetwork", `want a boolean, got ${describe(spec.hostNetwork)}`);
  }
  const networksText = meta.annotations[NETWORKS_ANNOTATION];
  const statusText = meta.annotations[NETWORK_STATUS_ANNOTATION];
  return {
    value: {
      uid: meta.uid,
      namespace: meta.namespace,
      name: meta.name,
      labels: meta.labels,
      nodeName: readString(spec, "nodeName", "spec.nodeName", r),
      hostNetwork,
      phase,
      containerPorts: readContainerPorts(spec, r),
      networks: networksText === undefined
        ? []
        : parseNetworksAnnotation(networksText, meta.namespace, r),
      networkStatus: statusText === undefined
        ? []
        : parseNetworkStatus(statusText, meta.namespace, r),
    },
    errors: r.errors,
  };
}

/** Parses a Namespace. */
