// Topic names (what a PUBLISH carries) and topic filters (what SUBSCRIBE
// asks for) by the rules of MQTT 3.1.1, 4.7; and the match between them.

import { MqttError, MAX_STRING_BYTES } from "./packets.js";
import { utf8Encode } from "../../util/utf8.js";
import { hasLoneSurrogate } from "../../util/chars.js";

/** Why `topic` cannot be a topic name, or undefined when it can. */
export function topicNameFault(topic: string): string | undefined {
  if (topic.length === 0) return "is empty";
  if (topic.includes("+") || topic.includes("#")) return "holds a wildcard (+ or #)";
  return stringFault(topic);
}

/** Why `filter` cannot be a topic filter, or undefined when it can. */
export function topicFilterFault(filter: string): string | undefined {
  if (filter.length === 0) return "is empty";
  const levels = filter.split("/");
  for (let i = 0; i < levels.length; i++) {
    const level = levels[i]!;
    if (level.includes("#") && (level !== "#" || i !== levels.length - 1)) return "has a # that is not a whole last level";
    if (level.includes("+") && level !== "+") return "has a + that is not a whole level";
  }
  return stringFault(filter);
}

/** Throws MqttError "bad-topic" unless `topic` is a valid topic name. */
export function checkTopicName(topic: string): void {
  const why = topicNameFault(topic);
  if (why) throw new MqttError("bad-topic", `topic name "${shown(topic)}" ${why}`);
}

/** Throws MqttError "bad-topic" unless `filter` is a valid topic filter. */
export function checkTopicFilter(filter: string): void {
  const why = topicFilterFault(filter);
  if (why) throw new MqttError("bad-topic", `topic filter "${shown(filter)}" ${why}`);
}

/**
 * Whether a topic name matches a filter. A filter starting with a wildcard
 * does not match a topic starting with '$' (4.7.2).
 */
export function topicMatches(filter: string, topic: string): boolean {
  if (topic.startsWith("$") && (filter.startsWith("+") || filter.startsWith("#"))) return false;
  const f = filter.split("/");
  const t = topic.split("/");
  for (let i = 0; i < f.length; i++) {
    if (f[i] === "#") return true; // also "a/#" against "a": the parent level (4.7.1.2)
    if (i >= t.length) return false;
    if (f[i] !== "+" && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}

function stringFault(s: string): string | undefined {
  if (s.includes("\0")) return "holds U+0000";
  if (hasLoneSurrogate(s)) return "holds a lone UTF-16 surrogate";
  if (s.length > MAX_STRING_BYTES / 3 && utf8Encode(s).length > MAX_STRING_BYTES) return `is over ${MAX_STRING_BYTES} bytes`;
  return undefined;
}

function shown(s: string): string {
  return s.length > 60 ? `${s.slice(0, 60)}...` : s;
}
