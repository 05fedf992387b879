// Small media files made by the test itself: a PNG and a WAV with known dimensions/duration.

import { deflateSync } from "node:zlib";

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
});

function crc32(bytes) {
    let c = 0xffffffff;
    for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
    const out = Buffer.alloc(12 + data.length);
    out.writeUInt32BE(data.length, 0);
    out.write(type, 4, "ascii");
    data.copy(out, 8);
    out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
    return out;
}

/** An RGB PNG of `width`x`height`: a diagonal gradient, so it is visibly an image. */
export function makePng(width = 160, height = 120) {
    const header = Buffer.alloc(13);
    header.writeUInt32BE(width, 0);
    header.writeUInt32BE(height, 4);
    header.set([8, 2, 0, 0, 0], 8); // 8 bits, truecolour, deflate, no filter, no interlace
    const rows = Buffer.alloc((width * 3 + 1) * height);
    for (let y = 0; y < height; y++) {
        const row = y * (width * 3 + 1);
        for (let x = 0; x < width; x++) {
            rows.set([(x * 255) / width, (y * 255) / height, 160], row + 1 + x * 3);
        }
    }
    return Buffer.concat([
        Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
        chunk("IHDR", header),
        chunk("IDAT", deflateSync(rows)),
        chunk("IEND", Buffer.alloc(0)),
    ]);
}

/** A mono 16-bit PCM WAV: a 440 Hz tone of `seconds`. */
export function makeWav(seconds = 1.5, rate = 8000) {
    const samples = Math.round(seconds * rate);
    const out = Buffer.alloc(44 + samples * 2);
    out.write("RIFF", 0, "ascii");
    out.writeUInt32LE(36 + samples * 2, 4);
    out.write("WAVEfmt ", 8, "ascii");
    out.writeUInt32LE(16, 16);
    out.writeUInt16LE(1, 20); // PCM
    out.writeUInt16LE(1, 22); // mono
    out.writeUInt32LE(rate, 24);
    out.writeUInt32LE(rate * 2, 28);
    out.writeUInt16LE(2, 32);
    out.writeUInt16LE(16, 34);
    out.write("data", 36, "ascii");
    out.writeUInt32LE(samples * 2, 40);
    for (let i = 0; i < samples; i++) {
        out.writeInt16LE(Math.round(Math.sin((2 * Math.PI * 440 * i) / rate) * 8000), 44 + i * 2);
    }
    return out;
}
