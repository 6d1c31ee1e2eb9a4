// The package's entry point (`xs-secure-streams`): what an application needs
// to run Secure Streams on any host. Portable, like everything under src/.
// The host contract is `xs-secure-streams/host`; the Node host, the policy
// compiler and the reader alone have their own entry points too.

export { SecureStreams, type SecureStreamsOptions } from "./ss/context.js";
export { SecureStream, type StreamHandlers, type StreamApi } from "./ss/stream.js";
export { SspcContext, SspcStream, type SspcOptions } from "./sspc/client.js";
export { State, RxFlag, Ret, stateName, type HandlerReturn } from "./ss/states.js";
export { sendBytes } from "./ss/send-bytes.js";
export { SSError, type SSErrorCode } from "./ss/errors.js";
export { Policy, PolicyError, type PolicyErrorCode, type StreamType } from "./policy/reader.js";
export { createH1Binding, type H1Binding, type H1BindingOptions } from "./protocols/h1.js";
export { ws, createWsBinding, type WsBindingOptions } from "./protocols/ws.js";
export { createH2Binding, type H2BindingOptions } from "./protocols/h2.js";
export { createMqttBinding, type MqttBindingOptions } from "./protocols/mqtt.js";
export type { Host } from "./host.js";
export type { ProtocolBinding } from "./protocols/binding.js";
