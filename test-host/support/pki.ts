// Test certificates, made with the `openssl` CLI (Debian package openssl)
// into a temporary directory once per process. Every server certificate is
// served with its CA (leaf + CA chain), because the device's TLS rejects a
// leaf-only chain. Every certificate carries Subject and Authority Key
// Identifiers, which the device's TLS needs after the leaf, except the one CA
// made without an AKI to show that refusal.

import { execFileSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { commandRuns } from "./peers.js";

export interface Credential {
  readonly certPem: string;
  readonly certDer: Uint8Array;
  readonly keyPem: string;
  /** The private key as PKCS#8 DER: the form the device takes. */
  readonly keyDer: Uint8Array;
  /** Path of certPem on disk (for NODE_EXTRA_CA_CERTS and openssl peers). */
  readonly certFile: string;
  readonly keyFile: string;
}

export interface ServerCredential extends Credential {
  /** Leaf then its issuing CA, PEM: what a device-compatible server sends. */
  readonly chainPem: string;
}

export interface TestPki {
  readonly dir: string;
  /** The CA the tests trust (RSA 2048). */
  readonly ca: Credential;
  /** An unrelated CA nobody trusts. */
  readonly otherCa: Credential;
  /** An intermediate CA signed by ca. */
  readonly intermediate: Credential;
  /** A CA with a Subject Key Identifier but no Authority Key Identifier: the device's TLS cannot use it. */
  readonly noAkiCa: Credential;
  /** DNS localhost + IP 127.0.0.1, signed by ca. */
  readonly server: ServerCredential;
  /** As server, but valid only in 2020. */
  readonly expired: ServerCredential;
  /** Signed by ca, but its only SAN is DNS wrong.example. */
  readonly wrongHost: ServerCredential;
  /** localhost/127.0.0.1, self-signed (chainPem is just the leaf). */
  readonly selfSigned: ServerCredential;
  /** localhost/127.0.0.1, signed by otherCa (chain: leaf + otherCa). */
  readonly otherServer: ServerCredential;
  /** localhost/127.0.0.1, signed by intermediate (chain: leaf + intermediate + ca). */
  readonly viaIntermediate: ServerCredential;
  /** localhost/127.0.0.1, signed by noAkiCa (chain: leaf + noAkiCa). */
  readonly noAkiServer: ServerCredential;
  /** localhost/127.0.0.1, signed by ca with RSA-PSS, which the device's TLS cannot check (chain: leaf + ca). */
  readonly pssServer: ServerCredential;
  /** RSA client certificate signed by ca. */
  readonly client: Credential;
  /** EC prime256v1 client certificate signed by ca: the device cannot use it. */
  readonly ecClient: Credential;
}

let cached: TestPki | undefined;
let available: boolean | undefined;

/** Whether the openssl CLI runs here. */
export function opensslAvailable(): boolean {
  available ??= commandRuns("openssl", ["version"]);
  return available;
}

/** The test PKI, made on first use (about a second: six RSA keys). */
export function testPki(): TestPki {
  cached ??= makePki();
  return cached;
}

const localhostSan = "DNS:localhost,IP:127.0.0.1";

function makePki(): TestPki {
  const dir = mkdtempSync(path.join(tmpdir(), "xs-ss-pki-"));
  process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(path.join(dir, "openssl.cnf"), opensslConfig);
  // One config serves every certificate: the SAN and the CA database come
  // from the environment ($ENV:: in the config needs both always set).
  const openssl = (args: string[], san = "DNS:unused", db = dir) =>
    execFileSync("openssl", args, {
      cwd: dir,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, XS_PKI_SAN: san, XS_PKI_DB: db },
    });
  const cnf = ["-config", "openssl.cnf"];

  const rsaKey = (name: string) => {
    openssl(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", name]);
    return name;
  };
  const ecKey = (name: string) => {
    openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-out", name]);
    return name;
  };
  // The database `openssl ca` keeps for each CA that signs.
  const database = (name: string, firstSerial: string) => {
    const db = path.join(dir, `${name}-db`);
    mkdirSync(db);
    writeFileSync(path.join(db, "index.txt"), "");
    writeFileSync(path.join(db, "serial"), `${firstSerial}\n`);
  };
  const makeCa = (name: string, cn: string, firstSerial: string, extensions = "v3_ca") => {
    const key = rsaKey(`${name}.key`);
    openssl(["req", ...cnf, "-x509", "-new", "-key", key, "-sha256", "-days", "3650",
      "-subj", `/CN=${cn}`, "-extensions", extensions, "-out", `${name}.pem`]);
    database(name, firstSerial);
    return credential(dir, name, key);
  };
  // `openssl ca` rather than `x509 -req`: OpenSSL 3.0's x509 cannot set a
  // start date, and the expired certificate needs one in the past.
  const sign = (ca: string, name: string, key: string, cn: string, ext: string, san: string, start: string, end: string,
    extra: string[] = []) => {
    openssl(["req", ...cnf, "-new", "-key", key, "-subj", `/CN=${cn}`, "-out", `${name}.csr`]);
    openssl(["ca", ...cnf, "-batch", "-notext", ...extra, "-keyfile", `${ca}.key`, "-cert", `${ca}.pem`,
      "-startdate", start, "-enddate", end, "-extensions", ext, "-in", `${name}.csr`, "-out", `${name}.pem`],
      san, path.join(dir, `${ca}-db`));
    return credential(dir, name, key);
  };

  const day = 86_400_000;
  const validFrom = asn1Time(Date.now() - day);
  const validTo = asn1Time(Date.now() + 730 * day);
  const withChain = (leaf: Credential, ...issuers: Credential[]): ServerCredential =>
    ({ ...leaf, chainPem: [leaf, ...issuers].map((c) => c.certPem).join("") });

  const ca = makeCa("ca", "XS Secure Streams Test CA", "1000");
  const otherCa = makeCa("other-ca", "Unrelated Test CA", "2000");
  const noAkiCa = makeCa("no-aki-ca", "Test CA without AKI", "3000", "v3_ca_no_aki");
  const intermediate = sign("ca", "intermediate", rsaKey("intermediate.key"), "XS Secure Streams Test Intermediate CA",
    "v3_intermediate", "DNS:unused", validFrom, validTo);
  database("intermediate", "4000");
  const serverKey = rsaKey("server.key");
  const server = withChain(
    sign("ca", "server", serverKey, "localhost", "server", localhostSan, validFrom, validTo), ca);
  const expired = withChain(
    sign("ca", "expired", serverKey, "localhost", "server", localhostSan, "20200101000000Z", "20201231235959Z"), ca);
  const wrongHost = withChain(
    sign("ca", "wrong-host", serverKey, "wrong.example", "server", "DNS:wrong.example", validFrom, validTo), ca);
  const otherServer = withChain(
    sign("other-ca", "other-server", serverKey, "localhost", "server", localhostSan, validFrom, validTo), otherCa);
  openssl(["req", ...cnf, "-x509", "-new", "-key", serverKey, "-sha256", "-days", "730",
    "-subj", "/CN=localhost", "-extensions", "server", "-out", "self-signed.pem"], localhostSan);
  const selfSigned = withChain(credential(dir, "self-signed", serverKey));
  const viaIntermediate = withChain(
    sign("intermediate", "via-intermediate", serverKey, "localhost", "server", localhostSan, validFrom, validTo),
    intermediate, ca);
  const pssServer = withChain(sign("ca", "pss-server", serverKey, "localhost", "server", localhostSan, validFrom, validTo,
    ["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:32"]), ca);
  const noAkiServer = withChain(
    sign("no-aki-ca", "no-aki-server", serverKey, "localhost", "server", localhostSan, validFrom, validTo), noAkiCa);
  const client = sign("ca", "client", rsaKey("client.key"), "xs-test-device", "client", "DNS:xs-test-device",
    validFrom, validTo);
  const ecClient = sign("ca", "ec-client", ecKey("ec-client.key"), "xs-test-device-ec", "client",
    "DNS:xs-test-device-ec", validFrom, validTo);

  return {
    dir, ca, otherCa, intermediate, noAkiCa, server, expired, wrongHost, selfSigned, otherServer, viaIntermediate,
    noAkiServer, pssServer, client, ecClient,
  };
}

function credential(dir: string, name: string, keyName: string): Credential {
  const certFile = path.join(dir, `${name}.pem`);
  const keyFile = path.join(dir, keyName);
  const certPem = readFileSync(certFile, "utf8");
  const keyPem = readFileSync(keyFile, "utf8");
  const keyDer = execFileSync("openssl", ["pkcs8", "-topk8", "-nocrypt", "-in", keyFile, "-outform", "DER"]);
  return {
    certPem,
    certDer: new Uint8Array(new X509Certificate(certPem).raw),
    keyPem,
    keyDer: new Uint8Array(keyDer),
    certFile,
    keyFile,
  };
}

/** OpenSSL's generalized time, UTC, to the second. */
function asn1Time(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:T]/g, "").replace(/\.\d+Z$/, "Z");
}

const opensslConfig = `
[ req ]
distinguished_name = dn
prompt = no
[ dn ]
CN = unused
[ ca ]
default_ca = ca_default
[ ca_default ]
dir = $ENV::XS_PKI_DB
database = $dir/index.txt
serial = $dir/serial
new_certs_dir = $dir
default_md = sha256
policy = policy_any
unique_subject = no
copy_extensions = none
email_in_dn = no
[ policy_any ]
commonName = supplied
[ v3_ca ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[ v3_ca_no_aki ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[ v3_intermediate ]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[ server ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
subjectAltName = $ENV::XS_PKI_SAN
[ client ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
subjectAltName = $ENV::XS_PKI_SAN
`;
