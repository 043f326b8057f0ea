/**
 * worker_threads entry of the load generator: prepare a driver from workerData, say
 * 'ready', wait for 'go', run, post the result. Messages are LoadgenMessage.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { prepareConfigMix } from './config-mix';
import { prepareDriver, type Driver, type DriverConfig, type DriverResult } from './driver';
import { prepareStreamDriver } from './stream-driver';
import { isStreamWorkload } from './workloads';

export type LoadgenMessage =
  | { type: 'ready' }
  | { type: 'measure'; edge: 'start' | 'end' }
  | { type: 'result'; result: DriverResult }
  | { type: 'error'; message: string };

async function main(): Promise<void> {
  const port = parentPort;
  if (port === null) throw new Error('loadgen worker: not started as a worker thread');
  const post = (m: LoadgenMessage): void => port.postMessage(m);
  try {
    const cfg = workerData as DriverConfig;
    let driver: Driver;
    if (cfg.workload === 'config-mix') driver = await prepareConfigMix(cfg);
    else if (isStreamWorkload(cfg.workload)) driver = await prepareStreamDriver(cfg);
    else driver = await prepareDriver(cfg);
    port.once('message', (msg: unknown) => {
      if (msg !== 'go') {
        driver.close();
        post({ type: 'error', message: `unexpected message ${JSON.stringify(msg)}` });
        return;
      }
      driver
        .go((edge) => post({ type: 'measure', edge }))
        .then(
          (result) => post({ type: 'result', result }),
          (e: unknown) => post({ type: 'error', message: e instanceof Error ? e.stack ?? e.message : String(e) }),
        );
    });
    post({ type: 'ready' });
  } catch (e) {
    post({ type: 'error', message: e instanceof Error ? e.message : String(e) });
  }
}

void main();
