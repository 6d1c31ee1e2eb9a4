// Node socket and TLS errors, mapped to the host contract's kinds.

import type { HostErrorKind } from "../../src/host.js";

const expiredCodes = new Set([
  "CERT_HAS_EXPIRED", "CERT_NOT_YET_VALID", "ERROR_IN_CERT_NOT_BEFORE_FIELD", "ERROR_IN_CERT_NOT_AFTER_FIELD",
]);
const hostnameCodes = new Set(["ERR_TLS_CERT_ALTNAME_INVALID", "HOSTNAME_MISMATCH"]);
/** OpenSSL's X509_V_ERR names as Node reports them: a chain that leads nowhere trusted. */
const untrustedCodes = new Set([
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE", "UNABLE_TO_GET_ISSUER_CERT", "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "SELF_SIGNED_CERT_IN_CHAIN", "DEPTH_ZERO_SELF_SIGNED_CERT", "CERT_UNTRUSTED", "CERT_REJECTED",
  "CERT_SIGNATURE_FAILURE", "UNABLE_TO_DECRYPT_CERT_SIGNATURE", "UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY",
  "INVALID_CA", "INVALID_PURPOSE", "PATH_LENGTH_EXCEEDED", "CERT_CHAIN_TOO_LONG", "CERT_REVOKED",
]);
/** Alerts a server sends about the client's certificate. */
const clientCertAlerts = new Set([
  "CERTIFICATE_REQUIRED", "BAD_CERTIFICATE", "UNSUPPORTED_CERTIFICATE", "CERTIFICATE_REVOKED",
  "CERTIFICATE_EXPIRED", "CERTIFICATE_UNKNOWN", "UNKNOWN_CA", "ACCESS_DENIED",
]);
const resetCodes = new Set(["ECONNRESET", "EPIPE", "ECONNABORTED", "ENETRESET", "ERR_STREAM_PREMATURE_CLOSE"]);

/**
 * Maps a Node socket error to the contract's kinds. `certificateRequested`
 * says whether the server asked for a client certificate (CertificateRequest
 * in its first flight): a handshake_failure alert after that is the server
 * turning our client authentication down (TLS 1.2 has no
 * certificate_required alert); without it, a protocol or cipher mismatch.
 */
export function classifySocketError(error: NodeJS.ErrnoException, certificateRequested = false): HostErrorKind {
  const code = error.code ?? "";
  // ENOENT: no local socket at that path (nothing listens there)
  if (code === "ECONNREFUSED" || code === "ENOENT") return "refused";
  if (code === "ETIMEDOUT") return "timeout";
  if (resetCodes.has(code)) return "reset";
  if (expiredCodes.has(code)) return "tls-expired";
  if (hostnameCodes.has(code)) return "tls-hostname";
  if (untrustedCodes.has(code)) return "tls-untrusted";
  const alert = /^ERR_SSL_(?:SSLV3|TLSV1|TLSV13)_ALERT_(\w+)$/.exec(code)?.[1];
  if (alert !== undefined) {
    if (clientCertAlerts.has(alert)) return "tls-auth";
    if (alert === "HANDSHAKE_FAILURE" && certificateRequested) return "tls-auth";
    return "tls";
  }
  if (code.startsWith("ERR_SSL_") || code.startsWith("ERR_TLS_") || code === "EPROTO") return "tls";
  return "other";
}
