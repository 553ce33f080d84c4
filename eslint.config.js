// Lint rules. The pure layers (base/, raft/, codec/, models/) may not touch time, randomness,
// the process or Node's modules: that is what makes seeded simulation replay exactly.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

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
    files: ['src/base/**/*.ts', 'src/raft/**/*.ts', 'src/codec/**/*.ts', 'src/models/**/*.ts'],
    rules: {
      'no-restricted-properties': ['error', ...impure],
      'no-restricted-globals': ['error', 'setTimeout', 'setInterval', 'setImmediate', 'process', 'Date', 'performance'],
      'no-restricted-imports': [
        'error',
        { patterns: [{ group: ['node:*', 'fs', 'net', 'os', 'child_process'], message: 'pure layer: no I/O' }] },
      ],
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
  { files: ['**/*.js'], ...tseslint.configs.disableTypeChecked },
);
