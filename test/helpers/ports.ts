// Fixed loopback ports of the services the test harness starts (away from a running `npm run dev`).
export const testPorts = {
  temporal: 17233,
  temporalUi: 18233,
  minio: 19000,
  minioConsole: 19001,
};
