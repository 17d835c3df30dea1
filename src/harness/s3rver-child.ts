/**
 * The s3rver child process that {@link startS3rver} (s3rver.ts) runs: starts s3rver with the
 * JSON config in `STRATA_S3RVER_CONFIG`, prints `{"port":N}` once it listens, and exits when
 * its stdin closes, that is when the parent goes away, even by SIGKILL.
 *
 * s3rver is a devDependency: it is loaded here, in the child, so that nothing the broker runs
 * ever loads it.
 */
import { rmSync } from 'node:fs';
import { createRequire } from 'node:module';

/** What the parent passes in `STRATA_S3RVER_CONFIG`. */
export interface S3rverChildConfig {
  /** Where s3rver keeps buckets and objects. */
  directory: string;
  /** Bucket created at startup. */
  bucket: string;
  /** Remove `directory` when the parent goes away (true when the harness made it). */
  removeOnExit: boolean;
}

/** The part of s3rver's API used here (the package ships no type declarations). */
interface S3rverServer {
  run(): Promise<{ port: number }>;
}
type S3rverConstructor = new (options: {
  address: string;
  port: number;
  silent: boolean;
  directory: string;
  configureBuckets: { name: string }[];
}) => S3rverServer;

const config = JSON.parse(process.env.STRATA_S3RVER_CONFIG ?? 'null') as S3rverChildConfig | null;
if (config === null) throw new Error('s3rver-child needs STRATA_S3RVER_CONFIG; it is started by startS3rver()');

const S3rver = createRequire(import.meta.url)('s3rver') as S3rverConstructor;
const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: config.directory, configureBuckets: [{ name: config.bucket }] });
server.run().then(
  (address) => process.stdout.write(`${JSON.stringify({ port: address.port })}\n`),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);

const quit = (): void => {
  if (config.removeOnExit) rmSync(config.directory, { recursive: true, force: true });
  process.exit(0);
};
process.stdin.on('end', quit);
process.stdin.on('error', quit);
process.stdin.resume();
