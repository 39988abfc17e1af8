// JPEG decoding with the pixels PIL gives (libjpeg-turbo defaults: ISLOW integer IDCT, fancy chroma
// upsampling), through the MozJPEG WebAssembly build shipped in the npm package @jsquash/jpeg.
// Browser-safe: the caller passes the .wasm (bytes, URL or a compiled module); Node finds it in
// node_modules (image-folder-node.ts). It does not decode CMYK, 12-bit, lossless or arithmetic-coded
// JPEGs (jpegInfo rejects them first) and, like PIL, does not apply EXIF orientation.

import mozjpegFactory from '@jsquash/jpeg/codec/dec/mozjpeg_dec.js';
import { EngineError } from '../util/errors.js';
import { jpegInfo, MAX_IMAGE_PIXELS, type JpegDecoder } from './image-decode.js';

export type { JpegDecoder } from './image-decode.js';

/** The .wasm of @jsquash/jpeg's decoder: a compiled module, its bytes, or a URL to fetch. */
export type WasmSource = WebAssembly.Module | ArrayBuffer | Uint8Array | URL | string;

/** Path of the decoder's .wasm inside the @jsquash/jpeg package (for bundlers and servers). */
export const JPEG_WASM_PATH = '@jsquash/jpeg/codec/dec/mozjpeg_dec.wasm';

/** What the Emscripten glue exposes (see @jsquash/jpeg/codec/dec/mozjpeg_dec.d.ts). */
interface MozJpegModule {
  decode(data: Uint8Array, preserveOrientation: boolean): { width: number; height: number; data: Uint8ClampedArray } | null;
}
type Factory = (opts: Record<string, unknown>) => Promise<MozJpegModule>;

/** Compiles the decoder's WebAssembly from bytes, a URL (fetched) or returns a compiled module as is. */
export async function compileJpegWasm(src: WasmSource): Promise<WebAssembly.Module> {
  if (src instanceof WebAssembly.Module) return src;
  let bytes: ArrayBuffer | Uint8Array;
  if (typeof src === 'string' || src instanceof URL) {
    const res = await fetch(src);
    if (!res.ok) throw new EngineError('createJpegDecoder', `cannot fetch the JPEG decoder's wasm from ${String(src)}: HTTP ${res.status}`);
    bytes = await res.arrayBuffer();
  } else bytes = src;
  try {
    return await WebAssembly.compile(bytes as BufferSource);
  } catch (e) {
    throw new EngineError('createJpegDecoder', `the JPEG decoder's wasm does not compile: ${(e as Error).message}`);
  }
}

/**
 * A JPEG decoder owning one instance of the MozJPEG WebAssembly module. Headers are checked first
 * (jpegInfo: clear errors for unsupported kinds, at most `maxPixels` pixels, default PIL's limit).
 * libjpeg's fatal errors become EngineErrors naming the file and libjpeg's message; a truncated file
 * (libjpeg's "Premature end of JPEG file" warning) is an error, as in PIL; other libjpeg warnings
 * (corrupt but decodable data) are ignored, as in PIL. After a fatal error the instance is
 * replaced (libjpeg exits without freeing its memory).
 */
export async function createJpegDecoder(wasm: WasmSource, opts: { maxPixels?: number } = {}): Promise<JpegDecoder> {
  const module = await compileJpegWasm(wasm);
  const maxPixels = opts.maxPixels ?? MAX_IMAGE_PIXELS;
  let messages: string[] = [];
  const instantiate = () =>
    (mozjpegFactory as unknown as Factory)({
      noInitialRun: true,
      print: (m: string) => messages.push(m),
      printErr: (m: string) => messages.push(m),
      instantiateWasm: (imports: WebAssembly.Imports, done: (i: WebAssembly.Instance) => void) => {
        const instance = new WebAssembly.Instance(module, imports);
        done(instance);
        return instance.exports;
      },
    });
  let instance = await instantiate();
  let broken = false;
  return {
    async decode(bytes, name) {
      const info = jpegInfo(bytes, name, maxPixels);
      if (broken) {
        instance = await instantiate();
        broken = false;
      }
      messages = [];
      let out: ReturnType<MozJpegModule['decode']>;
      try {
        out = instance.decode(bytes, false);
      } catch (e) {
        broken = true;
        const why = messages.filter((m) => m !== 'Premature end of JPEG file').pop() ?? (e instanceof Error ? e.message : `wasm exception ${String(e)}`);
        throw new EngineError('decodeImage', `${name}: corrupt image (libjpeg: ${why})`);
      }
      if (messages.includes('Premature end of JPEG file')) throw new EngineError('decodeImage', `${name}: corrupt image (truncated JPEG: libjpeg: Premature end of JPEG file)`);
      if (!out || out.width !== info.width || out.height !== info.height)
        throw new EngineError('decodeImage', `${name}: corrupt image (decoded ${out?.width}x${out?.height}, header says ${info.width}x${info.height})`);
      return { width: out.width, height: out.height, channels: info.components, pixelStride: 4, data: out.data };
    },
  };
}
