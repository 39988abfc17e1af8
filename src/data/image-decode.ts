// Image decoding shared by Node and browsers (browser-safe): the DecodedImage / ImageDecoder types,
// format sniffing, PNG and JPEG header readers that give clear errors (unsupported kinds, absurd
// sizes) BEFORE any pixel buffer is allocated, and the browser decoder (WASM JPEG + canvas PNG).
// It decodes no pixels itself: JPEG pixels come from jpeg.ts, PNG pixels from pngjs or the canvas.

import { EngineError } from '../util/errors.js';

/** A decoded image: `channels` native channels (1 grey, 3 colour) of pixel p stored at data[p * pixelStride + c]. */
export interface DecodedImage {
  width: number;
  height: number;
  channels: number;
  pixelStride: number;
  data: Uint8Array | Uint8ClampedArray;
}

/** Decodes one encoded image; throws an EngineError naming `name` for corrupt or unsupported input. */
export type ImageDecoder = (bytes: Uint8Array, name: string) => DecodedImage | Promise<DecodedImage>;

/** A JPEG decoder (createJpegDecoder in jpeg.ts). */
export interface JpegDecoder {
  /** Decodes one JPEG (RGBA storage, pixelStride 4; channels 1 or 3 as in the file). */
  decode(bytes: Uint8Array, name: string): Promise<DecodedImage>;
}

/**
 * Largest width * height decoded: PIL's decompression-bomb error threshold (2 * 89,478,485 pixels).
 * A header claiming more is rejected before any buffer is allocated.
 */
export const MAX_IMAGE_PIXELS = 2 * 89_478_485;

const OP = 'decodeImage';

/**
 * Most pixels a JPEG may claim per byte of file. Every block of a Huffman-coded scan costs at least one
 * bit (its DC difference code), so a frame whose first scan holds the full-resolution component has at
 * most 64 * 8 = 512 pixels per byte; this allows 4 times that. It bounds what a tiny corrupt file can
 * make the decoder allocate.
 */
export const JPEG_MAX_PIXELS_PER_BYTE = 2048;

/**
 * Most raw (unfiltered) PNG bytes per byte of file: deflate expands at most 1032:1, and each row adds
 * one filter byte. It bounds what a tiny corrupt PNG can make pngjs allocate.
 */
export const PNG_MAX_EXPANSION = 1032;
const hex = (b: Uint8Array, n: number) => Array.from(b.subarray(0, n), (x) => x.toString(16).padStart(2, '0')).join(' ');

/** 'png' | 'jpeg' by magic bytes, or null. */
export function imageFormat(bytes: Uint8Array): 'png' | 'jpeg' | null {
  if (bytes.length >= 8 && bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47) return 'png';
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  return null;
}

/** Known formats that torchvision's ImageFolder accepts but this project cannot decode, by magic bytes. */
function otherFormat(b: Uint8Array): string | null {
  const s = String.fromCharCode(...b.subarray(0, 12));
  if (s.startsWith('BM')) return 'BMP';
  if (s.startsWith('RIFF') && s.slice(8, 12) === 'WEBP') return 'WebP';
  if (s.startsWith('II*\0') || s.startsWith('MM\0*')) return 'TIFF';
  if (/^P[1-6]\s/.test(s)) return 'PNM (ppm/pgm)';
  if (s.startsWith('GIF8')) return 'GIF';
  return null;
}

/** Throws the error for bytes that are neither PNG nor JPEG (naming a recognised other format). */
export function unsupportedFormat(bytes: Uint8Array, name: string): never {
  const other = otherFormat(bytes);
  if (other) throw new EngineError(OP, `${name}: ${other} images are not supported (only JPEG and PNG); convert it to PNG`);
  throw new EngineError(OP, `${name}: neither PNG nor JPEG (starts with ${hex(bytes, 4)})`);
}

function checkSize(width: number, height: number, name: string, maxPixels: number): void {
  if (width === 0 || height === 0) throw new EngineError(OP, `${name}: corrupt image (header says ${width}x${height} pixels)`);
  if (width * height > maxPixels)
    throw new EngineError(OP, `${name}: ${width}x${height} pixels is over the ${maxPixels}-pixel limit (decompression bomb or corrupt header)`);
}

export interface PngInfo {
  width: number;
  height: number;
  bitDepth: number;
  /** 0 grey, 2 RGB, 3 palette, 4 grey + alpha, 6 RGBA. */
  colorType: number;
  interlaced: boolean;
  /** 1 for grey (types 0, 4), 3 for colour (2, 3, 6). */
  channels: 1 | 3;
}

/** Reads and validates a PNG's IHDR chunk (size limit, bit depth / colour type combination). */
export function pngInfo(b: Uint8Array, name: string, maxPixels = MAX_IMAGE_PIXELS): PngInfo {
  if (b.length < 33) throw new EngineError(OP, `${name}: corrupt image (truncated PNG: ${b.length} bytes, the header needs 33)`);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const type = String.fromCharCode(b[12]!, b[13]!, b[14]!, b[15]!);
  if (dv.getUint32(8) !== 13 || type !== 'IHDR') throw new EngineError(OP, `${name}: corrupt image (PNG does not start with a 13-byte IHDR chunk)`);
  const width = dv.getUint32(16);
  const height = dv.getUint32(20);
  const bitDepth = b[24]!;
  const colorType = b[25]!;
  const allowed: Record<number, number[]> = { 0: [1, 2, 4, 8, 16], 2: [8, 16], 3: [1, 2, 4, 8], 4: [8, 16], 6: [8, 16] };
  if (!allowed[colorType]?.includes(bitDepth))
    throw new EngineError(OP, `${name}: corrupt image (PNG colour type ${colorType} with bit depth ${bitDepth})`);
  if (b[28]! > 1) throw new EngineError(OP, `${name}: corrupt image (PNG interlace method ${b[28]})`);
  checkSize(width, height, name, maxPixels);
  const samples = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 }[colorType]!;
  const raw = Math.ceil((width * samples * bitDepth) / 8) * height;
  if (raw > PNG_MAX_EXPANSION * b.length)
    throw new EngineError(OP, `${name}: corrupt image (PNG header says ${width}x${height}, more pixel data than a ${b.length}-byte file can hold)`);
  return { width, height, bitDepth, colorType, interlaced: b[28] === 1, channels: colorType & 2 ? 3 : 1 };
}

export interface JpegInfo {
  width: number;
  height: number;
  /** Colour components in the frame: 1 grey, 3 YCbCr/RGB, 4 CMYK/YCCK. */
  components: number;
  /** Sample precision in bits (8; 12 in rare medical/scientific files). */
  precision: number;
  /** The SOF marker (0xc0 baseline, 0xc1 extended, 0xc2 progressive, 0xc3 lossless, 0xc9.. arithmetic). */
  sof: number;
}

/**
 * Reads a JPEG's frame header (walking the marker segments up to the first SOFn) and rejects what the
 * decoder cannot do, with a clear error: CMYK/YCCK, 12-bit, lossless, arithmetic coding, hierarchical
 * frames, a height defined later by DNL, more than `maxPixels` pixels.
 */
export function jpegInfo(b: Uint8Array, name: string, maxPixels = MAX_IMAGE_PIXELS): JpegInfo {
  const corrupt = (why: string): never => {
    throw new EngineError(OP, `${name}: corrupt image (${why})`);
  };
  if (b.length < 4 || b[0] !== 0xff || b[1] !== 0xd8) corrupt('no JPEG start-of-image marker');
  let i = 2;
  for (;;) {
    if (i + 4 > b.length) corrupt(`truncated JPEG: no frame header in ${b.length} bytes`);
    if (b[i] !== 0xff) corrupt(`expected a marker at byte ${i}, found 0x${b[i]!.toString(16)}`);
    const m = b[i + 1]!;
    if (m === 0xff) {
      i++; // fill byte
      continue;
    }
    if (m === 0x01 || (m >= 0xd0 && m <= 0xd7)) {
      i += 2; // stand-alone markers
      continue;
    }
    if (m === 0xd9) corrupt('JPEG ends before its frame header');
    if (m === 0xda) corrupt('JPEG scan starts before its frame header');
    const len = (b[i + 2]! << 8) | b[i + 3]!;
    if (len < 2) corrupt(`marker segment 0x${m.toString(16)} at byte ${i} has length ${len}`);
    const isSof = m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc;
    if (isSof) {
      if (len < 8 || i + 10 > b.length) corrupt('truncated JPEG frame header');
      const info: JpegInfo = {
        precision: b[i + 4]!,
        height: (b[i + 5]! << 8) | b[i + 6]!,
        width: (b[i + 7]! << 8) | b[i + 8]!,
        components: b[i + 9]!,
        sof: m,
      };
      const kind: Record<number, string> = { 0xc3: 'lossless', 0xc7: 'lossless', 0xcb: 'lossless', 0xcf: 'lossless' };
      const unsupported = (what: string): never => {
        throw new EngineError(OP, `${name}: ${what} JPEGs are not supported; re-save it as an 8-bit RGB or greyscale JPEG or PNG`);
      };
      if (kind[m]) unsupported('lossless');
      if (m >= 0xc9) unsupported('arithmetic-coded');
      if (m >= 0xc5) unsupported('hierarchical');
      if (info.precision !== 8) unsupported(`${info.precision}-bit`);
      if (info.components === 4) unsupported('CMYK/YCCK (4-component)');
      if (info.components !== 1 && info.components !== 3) corrupt(`frame header has ${info.components} components`);
      if (info.height === 0) unsupported('DNL-defined-height');
      checkSize(info.width, info.height, name, maxPixels);
      if (info.width * info.height > JPEG_MAX_PIXELS_PER_BYTE * b.length)
        corrupt(`frame header says ${info.width}x${info.height}, more pixels than a ${b.length}-byte JPEG can encode`);
      return info;
    }
    i += 2 + len;
  }
}

/**
 * Browser decoder. JPEGs go to `jpeg` when given (createJpegDecoder in jpeg.ts: pixels identical to
 * PIL's); without it the browser's own decoder is used, whose JPEG pixels differ from PIL's by a few
 * levels (another IDCT and chroma upsampling: on CIFAR-10 JPEGs in Chromium, max 17 and mean 1.5
 * levels of 255). PNGs always use createImageBitmap + OffscreenCanvas (lossless, so exact; colour-space
 * conversion is turned off). The canvas stores premultiplied alpha, so the colour of a pixel that is
 * not fully opaque cannot be read back exactly: such PNGs are an error here (PIL drops alpha and keeps
 * the colour). Channels come from the file's header.
 */
export function browserImageDecoder(opts: { jpeg?: JpegDecoder; maxPixels?: number } = {}): ImageDecoder {
  const maxPixels = opts.maxPixels ?? MAX_IMAGE_PIXELS;
  return async (bytes, name) => {
    const format = imageFormat(bytes);
    if (format === null) unsupportedFormat(bytes, name);
    if (format === 'jpeg' && opts.jpeg) return opts.jpeg.decode(bytes, name);
    const channels = format === 'png' ? pngInfo(bytes, name, maxPixels).channels : jpegInfo(bytes, name, maxPixels).components;
    let bitmap: ImageBitmap;
    try {
      bitmap = await createImageBitmap(new Blob([bytes as BlobPart], { type: `image/${format}` }), {
        colorSpaceConversion: 'none',
        premultiplyAlpha: 'none',
      });
    } catch (e) {
      throw new EngineError(OP, `${name}: corrupt image (${(e as Error).message})`);
    }
    const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
    const g = canvas.getContext('2d', { willReadFrequently: true });
    if (!g) throw new EngineError(OP, 'OffscreenCanvas 2d context is not available');
    g.drawImage(bitmap, 0, 0);
    const data = g.getImageData(0, 0, bitmap.width, bitmap.height).data;
    bitmap.close();
    if (format === 'png')
      for (let p = 3; p < data.length; p += 4)
        if (data[p] !== 255)
          throw new EngineError(OP, `${name}: PNG pixel ${(p - 3) / 4} is not opaque (alpha ${data[p]}): the browser canvas cannot return its exact colour; save the image without alpha`);
    return { width: canvas.width, height: canvas.height, channels, pixelStride: 4, data };
  };
}
