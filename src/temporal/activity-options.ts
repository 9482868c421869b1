// Named activity option sets: short database/storage I/O, and long transfers that heartbeat.
import type { ActivityOptions } from '@temporalio/workflow';

export const shortIo: ActivityOptions = {
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 20 },
};

export const longTransfer: ActivityOptions = {
  startToCloseTimeout: '6 hours',
  heartbeatTimeout: '60 seconds',
  retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 10 },
};
