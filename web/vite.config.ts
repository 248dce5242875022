import { defineConfig } from 'vitest/config';

// `vite preview` is the local front: it serves the built page and forwards the API's paths to
// cargo lambda watch, as CloudFront does in AWS (same origin, no CORS). Page routes fall back to
// index.html; API paths never do.
const api = `http://127.0.0.1:${process.env.ACTIVITY_LOG_API_PORT ?? '9000'}`;
const apiPaths = ['/activities', '/customers', '/destinations', '/exports', '/feed', '/integrity'];

export default defineConfig({
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  build: { target: 'es2022', sourcemap: false },
  preview: {
    host: '127.0.0.1',
    port: Number(process.env.ACTIVITY_LOG_WEB_PORT ?? '8080'),
    proxy: Object.fromEntries(apiPaths.map((p) => [p, { target: api, changeOrigin: false }])),
  },
  test: {
    include: ['src/**/*.test.ts'],
    environment: 'node',
  },
});
