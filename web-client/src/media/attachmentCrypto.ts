/**
 * Client-side encryption of attachments for encrypted rooms, with WebCrypto.
 * spec: client-server-api/_index.md#sending-encrypted-attachments — AES-CTR with a
 * 256-bit key and a 128-bit counter block whose low 64 bits start at zero, the key as
 * a JWK, and the SHA-256 of the ciphertext so the receiver can check the bytes first.
 */

/** The spec's EncryptedFile object (`file` / `thumbnail_file` in the content). */
export interface EncryptedFile {
  url: string;
  key: { alg: "A256CTR"; key_ops: string[]; kty: "oct"; k: string; ext: true };
  iv: string;
  hashes: { sha256: string };
  v: "v2";
}

export interface EncryptedAttachment {
  /** The ciphertext, to upload as application/octet-stream. */
  data: ArrayBuffer;
  /** Everything but `url`, which is known once the ciphertext is uploaded. */
  file: Omit<EncryptedFile, "url">;
}

export class AttachmentIntegrityError extends Error {
  constructor() {
    super("The attachment's bytes do not match its hash: it was altered or damaged, so it is not shown.");
    this.name = "AttachmentIntegrityError";
  }
}

export async function encryptAttachment(plaintext: ArrayBuffer | Uint8Array): Promise<EncryptedAttachment> {
  // spec: the high 64 bits of the counter block are random, the low 64 bits (the
  // counter itself) zero, so the counter never wraps inside one file.
  const iv = new Uint8Array(16);
  crypto.getRandomValues(iv.subarray(0, 8));
  const key = await crypto.subtle.generateKey({ name: "AES-CTR", length: 256 }, true, ["encrypt", "decrypt"]);
  const data = await crypto.subtle.encrypt({ name: "AES-CTR", counter: iv, length: 64 }, key, toBufferSource(plaintext));
  const jwk = await crypto.subtle.exportKey("jwk", key);
  const digest = await crypto.subtle.digest("SHA-256", data);
  return {
    data,
    file: {
      key: { alg: "A256CTR", key_ops: ["encrypt", "decrypt"], kty: "oct", k: jwk.k!, ext: true },
      iv: encodeUnpaddedBase64(iv),
      hashes: { sha256: encodeUnpaddedBase64(new Uint8Array(digest)) },
      v: "v2",
    },
  };
}

/** Decrypts after checking the SHA-256 of the ciphertext; throws AttachmentIntegrityError on a mismatch. */
export async function decryptAttachment(ciphertext: ArrayBuffer, file: Pick<EncryptedFile, "key" | "iv" | "hashes" | "v">): Promise<ArrayBuffer> {
  if (file.v !== "v2" && file.v !== undefined) throw new Error(`Unsupported encrypted attachment version ${String(file.v)}`);
  const expected = file.hashes?.sha256;
  if (!expected) throw new AttachmentIntegrityError();
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", ciphertext));
  if (!sameBytes(digest, decodeBase64(expected))) throw new AttachmentIntegrityError();
  const key = await crypto.subtle.importKey(
    "jwk",
    { kty: "oct", alg: "A256CTR", k: file.key.k, ext: true, key_ops: ["encrypt", "decrypt"] },
    { name: "AES-CTR" },
    false,
    ["decrypt"],
  );
  return crypto.subtle.decrypt({ name: "AES-CTR", counter: toBufferSource(decodeBase64(file.iv)), length: 64 }, key, ciphertext);
}

export function encodeUnpaddedBase64(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i++) binary += String.fromCharCode(bytes[i]!);
  return btoa(binary).replace(/=+$/, "");
}

/** Accepts padded or unpadded, standard or URL-safe base64 (senders differ). */
export function decodeBase64(text: string): Uint8Array {
  let normal = text.replace(/-/g, "+").replace(/_/g, "/").replace(/=+$/, "");
  normal += "=".repeat((4 - (normal.length % 4)) % 4);
  const binary = atob(normal);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let difference = 0;
  for (let i = 0; i < a.length; i++) difference |= a[i]! ^ b[i]!;
  return difference === 0;
}

function toBufferSource(bytes: ArrayBuffer | Uint8Array): ArrayBuffer {
  if (bytes instanceof ArrayBuffer) return bytes;
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}
