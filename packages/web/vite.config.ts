import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// The API server (packages/server) listens on 5000 by default; override with API_TARGET.
const apiTarget = process.env.API_TARGET ?? 'http://127.0.0.1:5000';

export default defineConfig({
  plugins: [react()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    // noVNC uses top-level await (core/util/browser.js); every browser we support has it.
    target: 'es2022',
    chunkSizeWarningLimit: 400,
    rolldownOptions: {
      treeshake: {
        // The UI imports only types and a few string constants from @qemu-manager/contract. Its
        // TypeBox schema builders are pure, so let the bundler drop them (and TypeBox with them).
        manualPureFunctions: ['Type'],
        moduleSideEffects: (id) => !/[\\/]@sinclair[\\/]typebox[\\/]/.test(id),
      },
      output: {
        // Code shared by the first page and the lazy chunks (console, admin pages): React, TanStack
        // Query, components, ... goes into one chunk instead of one small chunk per combination.
        chunkFileNames: (chunk) => (chunk.isDynamicEntry ? 'assets/[name]-[hash].js' : 'assets/shared-[hash].js'),
        codeSplitting: { groups: [{ name: 'shared', minShareCount: 2 }] },
      },
    },
  },
  server: {
    port: 3001,
    strictPort: true,
    proxy: {
      '/api': { target: apiTarget, changeOrigin: false, ws: true },
    },
  },
  preview: {
    port: 3001,
    proxy: {
      '/api': { target: apiTarget, changeOrigin: false, ws: true },
    },
  },
});
