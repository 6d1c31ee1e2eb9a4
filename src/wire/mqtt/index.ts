// MQTT 3.1.1 client (and server-side) wire codec: packet encoder, streaming
// decoder, topic rules. What the MQTT protocol binding (src/protocols) builds on.

export * from "./packets.js";
export { encodePacket, encodePublishHead, writePublishHead, publishHeadSize, varintSize } from "./encode.js";
export { MqttDecoder, decodeBody, packetName, type MqttDecoderOptions } from "./decode.js";
export { topicNameFault, topicFilterFault, checkTopicName, checkTopicFilter, topicMatches } from "./topic.js";
