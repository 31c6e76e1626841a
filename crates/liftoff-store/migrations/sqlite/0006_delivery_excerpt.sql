-- What a receiver answered to a failed delivery is kept apart from `last_error` (which read
-- keys see): at most 100 bytes of cleaned text, shown to admins only. Errors stored before
-- held the receiver's answer after "<host> answered <status>: "; they keep only the status.
ALTER TABLE notification_outbox ADD COLUMN response_excerpt TEXT;
UPDATE notification_outbox
   SET last_error = 'HTTP ' || substr(last_error, instr(last_error, ' answered ') + 10, 3) || ' from the receiver'
 WHERE instr(last_error, ' answered ') > 0;
