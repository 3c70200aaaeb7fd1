// The bytes a p11-kit RPC client sends as C_Initialize's first argument (protocol version 0).
export const HANDSHAKE_MAGIC = new TextEncoder().encode('PRIVATE-GNOME-KEYRING-PKCS11-PROTOCOL-V-1');
