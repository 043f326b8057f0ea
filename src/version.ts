/** cairn's own version, and the etcd API version it implements on the wire. */
export const CAIRN_VERSION = '0.1.0';
export const ETCD_API_VERSION = '3.4.0';
