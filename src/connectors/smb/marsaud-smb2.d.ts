// Types for the pieces of @marsaud/smb2 0.18.0 this client reuses (the package ships types for its high-level API only).
declare module '@marsaud/smb2/lib/tools/smb2-message.js' {
  interface Smb2MessageOptions {
    headers: Record<string, string | number | Buffer>;
    request: Record<string, string | number | Buffer>;
  }
  /** Encodes an SMB2 header plus a command body from the table in lib/structures/<command>.js. */
  class SMB2Message {
    constructor(options: Smb2MessageOptions);
    isMessageIdSetted?: boolean;
    getBuffer(connection: { messageId: number }): Buffer;
  }
  export default SMB2Message;
}

declare module '@marsaud/smb2/lib/tools/ms_erref.js' {
  const table: { getStatus(status: number): { code: string; message: string } };
  export default table;
}
