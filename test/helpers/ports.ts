// Loopback ports of the services the test harness starts (away from a running `npm run dev`).
// TEST_PORT_OFFSET shifts them all, so two harness runs on one machine do not collide.
const offset = Number(process.env.TEST_PORT_OFFSET ?? 0);

export const testPorts = {
  temporal: 17233 + offset,
  temporalUi: 18233 + offset,
  minio: 19000 + offset,
  minioConsole: 19001 + offset,
  /** Weaviate's HTTP port; its cluster ports are the next five (see weaviateClusterPorts). */
  weaviate: 19080 + offset,
  weaviateGrpc: 19090 + offset,
};
