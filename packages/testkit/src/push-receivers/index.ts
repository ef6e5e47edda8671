export { startApnsReceiver } from './apns-receiver';
export type { ApnsDelivery, ApnsReceiver, ApnsReceiverOptions, ApnsRefusal } from './apns-receiver';
export { startFcmReceiver } from './fcm-receiver';
export type { FcmDelivery, FcmReceiver, FcmReceiverOptions, FcmRefusal } from './fcm-receiver';
export { startWebPushReceiver } from './webpush-receiver';
export type {
  ReceiverSubscription,
  WebPushDelivery,
  WebPushReceiver,
  WebPushReceiverOptions,
  WebPushRefusal,
} from './webpush-receiver';
export { FaultScript } from './faults';
export type { ScriptedFault } from './faults';
export { decryptAes128gcm } from './aes128gcm';
