/** URLs in messages: redaction lives in core (core/redact.ts), where records use it too. */
export { redactUrl } from '../core/redact.js';
