// Where the studio's static assets live, relative to the page: shared by the bundles (engine.ts,
// main.ts) and by the Node side that serves or copies them (server.ts, build.ts). Constants only.

/** The embedded MNIST: manifest.json (naming the four IDX files) and the files, under this folder. */
export const MNIST_DIR = 'data/mnist/';
/** @jsquash/jpeg's decoder wasm (the library's PIL-identical JPEG decoder). */
export const JPEG_WASM_URL = 'jpeg/mozjpeg_dec.wasm';
