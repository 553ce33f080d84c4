// The in-memory object store (the simulator's and unit tests' fake) against the port's conformance suite.

import { MemoryObjectStore } from '../../src/data/memory-object-store.ts';
import { objectStoreConformance } from './object-store-conformance.ts';

objectStoreConformance('MemoryObjectStore', () => {
  const store = new MemoryObjectStore();
  return Promise.resolve({
    store,
    multipartBytes: 3 * 1024 * 1024,
    refusesRangeOfEmptyObject: true,
    stopServer: () => {
      store.unavailable = true;
      return Promise.resolve();
    },
    dispose: () => Promise.resolve(),
  });
});
