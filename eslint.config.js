// Lint rules. The pure layers (base/, raft/, codec/, models/) may not touch time, randomness,
// the process or Node's modules: that is what makes seeded simulation replay exactly.
//
// The layer rules ("layers: ..."): every folder of src/ may import only the folders listed for it
// in `layers` below (docs/ARCHITECTURE.md, "Allowed imports", has the same table with the reasons).
// Imports point inward: base <- raft, codec, models <- multiraft, control, data, query <- node;
// api/ and cli/ translate only. Adapters (storage, transport, metrics, s3, engine) never import each
// other and only node/ wires them; an adapter may import the ports file of a user it implements
// (`<folder>/ports.ts`, or a named port file such as `data/query-engine.ts`). Each npm package with a home folder is imported there only (`homes`).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const inner = ['base', 'raft', 'codec', 'models'];
const ring = [...inner, 'multiraft', 'control', 'data', 'query'];
const adapters = ['storage', 'transport', 'metrics', 's3', 'engine'];
/** A port declared by its user, which an adapter (or node/) implements. */
const userPorts = ['multiraft/ports.ts', 'api/ports.ts', 'data/query-engine.ts', 'data/object-store.ts'];

/** What each folder of src/ may import besides itself: a folder name, or one file (`folder/file.ts`). */
const layers = {
  base: [],
  raft: ['base'],
  // codec validates decoded bytes into the core's types.
  codec: ['base', 'raft'],
  models: ['base', 'codec'],
  multiraft: inner,
  // Controllers drive the host (its outcomes and clock port).
  control: [...inner, 'multiraft'],
  data: [...inner, 'multiraft', 'control'],
  query: [...inner, 'multiraft', 'control', 'data'],
  ...Object.fromEntries(adapters.map((adapter) => [adapter, [...inner, ...userPorts]])),
  api: ring,
  // The smart query client runs the members' own fan-out, coverage and map-answer code.
  client: [
    'base',
    'codec',
    'models',
    'data/query-engine.ts',
    'query/fan-out.ts',
    'query/coverage.ts',
    'query/map-wire.ts',
  ],
  // node/ wires one process: every adapter, the app and the binary server it serves, the API's ports
  // it implements (Forward), and the API's meta proposer, which it hands to the meta controller as
  // the controller's proposeAnywhere port; and the API's member credential (auth.ts) for its own calls.
  node: [
    ...ring,
    ...adapters,
    'api/app.ts',
    'api/binary-server.ts',
    'api/ports.ts',
    'api/meta-propose.ts',
    'api/auth.ts',
  ],
  // The CLI starts a node and reads the API's answers with the API's own types. `dram dev` also
  // starts the development S3 server and uploads the sample database through the S3 adapter: a
  // development tool wiring its own process, as node/ does for a node.
  cli: [...inner, 'node', 'api', 'client', 's3/s3rver-process.ts', 's3/s3-object-store.ts', 'data/upload-directory.ts'],
};

/** The one folder each of these npm packages may be imported from. */
const homes = [
  { packages: ['level', 'level/*'], home: 'storage' },
  { packages: ['fastify', 'fastify/*'], home: 'api' },
  { packages: ['prom-client', 'prom-client/*'], home: 'metrics' },
  { packages: ['msgpackr', 'msgpackr/*'], home: 'codec' },
  { packages: ['@aws-sdk/*'], home: 's3' },
  { packages: ['@duckdb/*'], home: 'engine' },
  // Endpoint params are validated against each endpoint module's JSON schema in src/query/.
  { packages: ['ajv', 'ajv/*', 'ajv-formats', 'ajv-formats/*'], home: 'query' },
  // Parquet footers of lazy databases are read in src/data/parquet-footer.ts.
  { packages: ['hyparquet', 'hyparquet/*'], home: 'data' },
];

const escape = (text) => text.replace(/[.*+?^${}()|[\]\\]/gu, '\\$&');

/** no-restricted-imports patterns for one folder: other folders not allowed, packages homed elsewhere. */
function layerPatterns(folder) {
  const allowed = [folder, ...layers[folder]].map((entry) =>
    entry.endsWith('.ts') ? `${escape(entry)}$` : `${entry}/`,
  );
  return [
    {
      regex: `^(\\.\\./)+(?!(${allowed.join('|')}))[^./][^/]*/`,
      message: `layers: src/${folder} may import only ${layers[folder].map((entry) => `src/${entry}`).join(', ') || 'itself'}`,
    },
    ...homes
      .filter(({ home }) => home !== folder)
      .map(({ packages, home }) => ({
        group: packages,
        message: `layers: ${packages[0].replace('/*', '')} is imported only in src/${home}`,
      })),
  ];
}

const pureFolders = ['base', 'raft', 'codec', 'models'];
const pureImports = { group: ['node:*', 'fs', 'net', 'os', 'child_process'], message: 'pure layer: no I/O' };

const impure = [
  { object: 'Math', property: 'random', message: 'pure layer: take a seeded Rng instead' },
  { object: 'Date', property: 'now', message: 'pure layer: time comes in as ticks' },
  { object: 'performance', property: 'now', message: 'pure layer: time comes in as ticks' },
];

export default tseslint.config(
  { ignores: ['node_modules/', 'coverage/', 'jepsen-like/runs/', '.dram/'] },
  js.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: { allowDefaultProject: ['*.js'] }, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowBoolean: true }],
      '@typescript-eslint/no-unnecessary-condition': ['error', { allowConstantLoopConditions: true }],
    },
  },
  {
    // A function a reader can hold in their head: at most 70 lines (blank lines and comments not
    // counted), in the code that ships and in the code that measures and attacks it. Not in tests
    // (test/, *.test.ts): a `describe` callback and a shared conformance suite hold a file's cases.
    files: ['src/**/*.ts', 'bench/**/*.ts', 'jepsen-like/**/*.ts'],
    ignores: ['**/*.test.ts'],
    rules: { 'max-lines-per-function': ['error', { max: 70, skipBlankLines: true, skipComments: true }] },
  },
  {
    files: pureFolders.map((folder) => `src/${folder}/**/*.ts`),
    rules: {
      'no-restricted-properties': ['error', ...impure],
      'no-restricted-globals': ['error', 'setTimeout', 'setInterval', 'setImmediate', 'process', 'Date', 'performance'],
      'no-restricted-syntax': [
        'error',
        {
          selector:
            'FunctionDeclaration[async=true], ArrowFunctionExpression[async=true], FunctionExpression[async=true]',
          message: 'pure layer: no async',
        },
      ],
    },
  },
  ...Object.keys(layers).map((folder) => ({
    files: [`src/${folder}/**/*.ts`],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [...layerPatterns(folder), ...(pureFolders.includes(folder) ? [pureImports] : [])] },
      ],
    },
  })),
  { files: ['**/*.js'], ...tseslint.configs.disableTypeChecked },
);
