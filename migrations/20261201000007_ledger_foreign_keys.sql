-- Two foreign keys of the slot ledger go (issue 8): each was checked row by row, as a query of its
-- own at the end of every admission statement (about 23 µs per call each, a tenth of the
-- admission's database time at 32 clients), and each guarded a value that the one statement
-- writing it already takes from a row it has just checked:
-- - active_calls.user_id is the user of the slot's call (active_calls.id still references calls,
--   and calls.user_id references users): admit_calls copies it from the call it inserts;
-- - account_slots.call_id names the call holding the line: admit_calls sets it to the call it
--   inserts in the same statement, and releasing the slot clears it. Its UNIQUE constraint (one
--   line per call) stays.
ALTER TABLE active_calls DROP CONSTRAINT active_calls_user_id_fkey;
ALTER TABLE account_slots DROP CONSTRAINT account_slots_call_id_fkey;
