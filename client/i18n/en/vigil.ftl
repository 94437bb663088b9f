## Vigil's messages in English. Every message here must also be in ../ru/vigil.ftl (a test
## checks). Command names, flags, file names and JSON field names stay as they are in every
## language: people type them.

## Prefixes of a line on stderr.
error-prefix = error
warning-prefix = warning

## The program itself.
runtime-failed = cannot start the async runtime: { $error }

home-unknown = no --home given, VIGIL_HOME unset and HOME unset; pass --home DIR
home-busy = Another vigil command is using this home; waiting for it to finish...

## Network (--verbose)
net-connected = connected to the relay at { $addr } over { $transport } in { $ms } ms
net-fallback = { $first } did not connect to { $addr } within { $secs } s; trying { $second } too

## vigil report check
report-valid = Report is valid: { $kind } / { $urgency } — { $title }

## vigil report send
send-no-file = no --file given and stdin is not a terminal; pass --file report.json (or --file - to read stdin)
report-queued = Report "{ $title }" ({ $kind }, { $urgency }) encrypted for { $count ->
        [one] 1 NGO
       *[other] { $count } NGOs
    } and queued.
report-relay-queued = the copy for { $to } via relay { $relay } is kept in the outbox ({ $error }); `vigil outbox flush` sends it later
report-relay-refused = the relay refused it
report-done = Done: this report is stored at the relay for { $names }.
report-earlier = Also sending { $count } earlier report { $count ->
        [one] copy
       *[other] copies
    } from the outbox.
report-earlier-pending = Warning: earlier report copies are still waiting in the outbox ({ $error }); they are safe there, run `vigil outbox flush` later.

## vigil report send without --file, on a terminal: questions, field by field.
prompt-intro = New incident report. Press Enter to skip optional fields. Nothing is sent until the end.
prompt-required = required
prompt-choice = { $question } [{ $options }] (default { $default })
prompt-choose-one = choose one of: { $options }
prompt-kind = What happened
prompt-urgency = How urgent
prompt-title = One-line title
prompt-when = When (e.g. 2024-02-20, 2024-02-20T10:00+03:00, or 2024-02 if the day is not known)
prompt-not-a-date = not a date: write it like 2024-02-20, or 2024-02-20T10:00+03:00 with the time
prompt-where = Where
prompt-victim = Who was targeted (name or pseudonym)
prompt-relative = Relative at risk, if any
prompt-agency = Who did it (agency, unit), if known
prompt-vehicle = Vehicles (colour, make, plate), if seen
prompt-narrative = What happened, in your words
prompt-lines = { $question } (as many lines as you need; finish with an empty line, or Ctrl-D):
prompt-lines-required = required: type at least one line
prompt-action = What should the NGO do
prompt-publish = May the NGO publish anonymised details? (yes/no)
prompt-draft = The draft, to be encrypted and sent to { $to }:
prompt-send-now = Send now? [y/N]
# Answers that mean yes, besides "y" and "yes" (accepted in every language), comma-separated.
prompt-yes-words = y, yes
prompt-not-sent = not sent; nothing was stored (run the command again to start over, or save the report in a file and use --file)
prompt-input-ended = input ended before the report was complete; nothing was sent

## Kinds of incident and urgencies as the questions offer them. In English they are the words
## of the report format itself.
kind-abduction = abduction
kind-arbitrary-detention = arbitrary_detention
kind-disappearance = disappearance
kind-torture = torture
kind-threat = threat
kind-relative-threatened = relative_threatened
kind-deportation-risk = deportation_risk
kind-other = other
urgency-urgent = urgent
urgency-high = high
urgency-normal = normal
urgency-low = low

## vigil outbox list|flush|cancel
outbox-empty = Outbox is empty.
outbox-empty-delivered = Outbox is empty: everything was delivered to the relay.
outbox-item = { $id }  to { $to } via { $relay }, queued { $age }, { $attempts ->
        [0] not tried yet
        [one] 1 attempt
       *[other] { $attempts } attempts
    }
age-just-now = just now
age-minutes = { $n } min ago
age-hours = { $n } h ago
age-days = { $n } days ago
outbox-bad-id = "{ $id }" is not an outbox id; give at least 4 characters of an id from `vigil outbox list`
outbox-ambiguous-id = id { $id } matches several queued reports; give more characters
outbox-no-such-id = no queued report with id { $id }; see `vigil outbox list`
outbox-cancelled = Cancelled the report queued for { $to }; its encrypted copy is deleted from this device.
outbox-cancelled-maybe-delivered = An earlier attempt may have reached the relay before its answer was lost; if so, the NGO still receives that copy.
outbox-attempt-failed = Attempt { $attempt } failed: { $error }
outbox-retrying = Retrying in { $delay } ({ $left } left for retries; the report is safe in the outbox meanwhile).
outbox-delivered = Delivered to the relay for { $to } (stored on its disk).
outbox-delivered-duplicate = It had arrived on an earlier try; the NGO gets one copy.
outbox-not-delivered = Not delivered for { $to }: { $error }
outbox-pending = { $count ->
        [one] 1 report copy
       *[other] { $count } report copies
    } not delivered yet

## Relay errors: what happened, in words that fit any command.
relay-bad-address = relay address { $addr } is not a host:port that resolves
relay-unreachable = cannot reach the relay at { $addr } ({ $reason })
relay-reason-timed-out = timed out
relay-reason-no-answer = no answer within { $secs } seconds
relay-reason-no-answer-over = no answer over { $transport } within { $secs } seconds
relay-reason-tcp-refused = TCP: connection refused
relay-reason-full = the relay is refusing new connections for now: it is full, or too many connections come from your network
relay-mismatch = the relay's identity does not match the card (possible interception; card: { $expected }, relay: { $got })
relay-not-recognised = the server at the relay address did not recognise this card (possible interception, or the relay's certificate changed; card: { $expected })
relay-refused = the relay refused the request: { $message } ({ $code }{ $temporary ->
        [yes] , temporary
       *[no] {""}
    })
relay-protocol = the relay sent an invalid answer ({ $detail })
relay-connection-lost = the connection to the relay was lost ({ $detail })
relay-timeout = the relay did not answer within { $secs } seconds
relay-nothing-pinned = no relay certificate fingerprint to check the relay against
relay-too-large = the encrypted report is { $len } bytes, more than a relay accepts ({ $max } bytes)

## Advice after an error: what it means for the user's data and what to do.
advice-usage = see `vigil --help`
advice-try-later = try again later
advice-reporter-card-expired = the report was not sent or queued
advice-contacts-card-expired = the card was not imported
advice-reporter-unreachable = the report stays in the outbox, encrypted; run `vigil outbox flush` later, or from another network
advice-reporter-mismatch = the report stays in the outbox, encrypted; do not retry from this network, and confirm the relay fingerprint with the NGO over a channel you trust
advice-reporter-refused-retry = the report stays in the outbox, encrypted; run `vigil outbox flush` later
advice-reporter-quota = the report stays in the outbox, encrypted; run `vigil outbox flush` later (the NGO is told its mailbox refused reports), and reach the NGO another way if it is urgent
advice-reporter-refused = the report stays in the outbox, but retrying will not help; tell the NGO over another channel
advice-reporter-protocol = the report stays in the outbox, encrypted; run `vigil outbox flush` later, and tell the NGO if it keeps happening
advice-reporter-bad-address = the report stays in the outbox; check the relay address on the NGO's card (`vigil contact list`)
advice-reporter-nothing-pinned = the report stays in the outbox; import the NGO's card again (`vigil contact add CARD_FILE`)
advice-reporter-too-large = no relay accepts a report this large; send a shorter one, with fewer attachments
advice-ngo-unreachable = nothing was lost: the reports stay at the relay until fetched; try again later
advice-ngo-mismatch = nothing was fetched or changed; do not retry from this network, and confirm the relay's fingerprint with its operator (`vigil-relay fingerprint`) over a channel you trust
advice-ngo-protocol = nothing was lost: the reports stay at the relay until fetched; try again later, and tell the relay's operator if it keeps happening
advice-ngo-refused = retrying will not help; ask the relay's operator
advice-ngo-bad-address = check the relay address (`vigil ngo set-relay --relay HOST:PORT` changes it)
advice-ngo-nothing-pinned = set the relay's certificate fingerprint with `vigil ngo set-relay --relay-fingerprint FP`
advice-demo = the demo's relay runs on this machine; run `vigil demo` again (`--keep` keeps its files to look at)

## An invalid report, by field. `{ $field }` is the field's name in the report format.
report-too-large = report is { $len } bytes, more than the { $max }-byte limit; move long material into an attachment
report-not-json = report is not valid: { $detail } (line { $line }, column { $column }); see docs/report-format.md
report-not-object = the report must be a JSON object, {"{"} ... {"}"}; see docs/report-format.md
report-field-missing = report field `{ $field }` is missing; see docs/report-format.md
report-field-empty = report field `{ $field }` is empty; fill it in
report-field-too-long = report field `{ $field }` is longer than { $max } characters; shorten it and put detail in the narrative
report-field-one-of = report field `{ $field }` must be one of { $allowed }, got { $got }; see docs/report-format.md
report-field-date = report field `{ $field }` must be a date such as 2024-02-20, a date and time such as 2024-02-20T10:00:00+03:00, or 2024-02 or 2024 when the day is not known
report-field-control = report field `{ $field }` contains the control character { $char }, which a one-line field may not hold; remove it (line breaks belong in the narrative)
report-field-range = report field `{ $field }` must be between { $range }
report-field-too-many = report field `{ $field }` has too many entries; see docs/report-format.md
report-field-other = report field `{ $field }` { $problem }; see docs/report-format.md

## Card errors a reporter meets.
card-expired = the card of "{ $name }" expired on { $when }; ask { $name } for a renewed card and import it with `vigil contact add`
card-not-a-card = not a Vigil recipient card (it should start with VIGIL-CARD-1.); ask the NGO for its card again
card-damaged = recipient card is damaged; ask the NGO for its card again
card-incomplete = this card is incomplete: its end is missing (cut off when it was copied or scanned?); copy the whole card, from VIGIL-CARD-1. to its last character, or ask the NGO to send it again
card-bad-signature = recipient card's signature does not verify: it was altered after the NGO made it; do not use it, get the card from the NGO again
card-too-large = this file is too large to be a Vigil card; is it the right file?
card-field = recipient card field `{ $field }` is invalid; ask the NGO for its card again

## File errors.
fs-exists = { $path } already exists; remove it or choose another path
fs-too-large = { $path } is larger than { $max } bytes; is it the right file?
fs-not-found = { $path } does not exist; check the file name
fs-permission-denied = no permission to use { $path }; check its permissions

## Contacts.
contact-not-found = no contact named "{ $name }"; add the NGO's card with `vigil contact add CARD_FILE` (see `vigil contact list`)

## --help. `help-report-send` is the one-line description of `vigil report send`,
## `help-report-send-to` the help of its `--to`; `help-arg-...` serves a flag several commands
## share, `help-flag-...` the flags every command has. (client/src/help.rs says how they are
## looked up.) In English these are the doc comments of client/src/cli.rs, word for word.
help-heading-usage = Usage:
help-heading-commands = Commands:
help-heading-arguments = Arguments:
help-heading-options = Options:
help-flag-help = Print help
help-flag-version = Print version
help-flag-help-command = Print this message or the help of the given subcommand(s)
help-flag-home = State directory (keys, contacts, outbox, inbox)
help-flag-json = Machine-readable output: one JSON object per line on stdout
help-flag-lang = Language of messages and help: en or ru. Without it, VIGIL_LANG, then LC_ALL, LC_MESSAGES and LANG decide; anything else is English. JSON output is the same in every language
help-flag-transport = How to reach relays: auto (QUIC, then TLS over TCP if QUIC does not connect within a few seconds; what worked is remembered per relay), quic, or tcp
help-flag-proxy = Send every connection through this SOCKS5 proxy, e.g. socks5h://127.0.0.1:9050 for Tor or Orbot, over TLS on TCP; never connect directly while it is set
help-flag-verbose = Say on stderr how each relay connection was made (QUIC or TCP, and how long it took)
help = Vigil: send incident reports, end-to-end encrypted, to the NGOs that can act on them
help-after =
    Reporter:  vigil contact add ngo.card
               vigil report send --to "Memorial Caucasus desk" --file report.json
    NGO:       vigil ngo init --name "Memorial Caucasus desk" --relay HOST:PORT \
                     --relay-fingerprint FP --card-out ngo.card
               vigil inbox fetch && vigil inbox list
    Try it:    vigil demo
    Scripts give passphrases through VIGIL_PASSPHRASE_FILE.
help-ngo = Set up and manage an NGO inbox
help-card = Show a recipient card (yours, or one in a file)
help-inbox = Reports received by this NGO
help-age = Encrypt and decrypt files in the age format (compatible with age and rage)
help-demo = Run the whole flow on this machine with a temporary relay and say what happens
help-contact = Manage the NGOs you can send reports to
help-contact-add = Import an NGO's recipient card (a file, or - for stdin) and show its safety number
help-contact-add-card = The card file, or - to read it from stdin
help-contact-add-replace = Replace an existing contact of the same name that has a different key
help-contact-list = List the NGOs you can send to
help-contact-remove = Remove an NGO from your contacts. Refused while reports for it wait in the outbox, unless --force, which deletes those reports too
help-contact-remove-name = The NGO's name as on its card (case does not matter)
help-contact-remove-force = Also delete report copies for this NGO still waiting in the outbox (they are never sent). Without it, the contact is kept while any wait: deliver them first with `vigil outbox flush`
help-contact-verify = Show an NGO's safety number, how to compare it with the NGO out of band, and record that you did (asks on a terminal; --clear forgets it)
help-contact-verify-name = The NGO's name as on its card (case does not matter)
help-contact-verify-yes = Record the comparison without asking (on a terminal, the default is to ask)
help-contact-verify-clear = Forget an earlier verification, e.g. after a number was read out wrong
help-report = Write and send incident reports
help-report-send = Encrypt a report for one or more NGOs and send it (queued in the outbox until stored)
help-report-send-to = NGO to send to, by the name on its card; repeat for several
help-report-send-file = Report JSON file (- for stdin). Without it, and on a terminal, you are asked field by field
help-report-send-queue-only = Only queue the report in the outbox; send later with `vigil outbox flush`
help-arg-retry-for = Keep retrying what fails for a passing reason (link lost, relay unreachable or busy) for this long, e.g. 90s, 5m, 1h; 0 tries once. Default: 2m on a terminal; once otherwise, so scripts get exit code 3 quickly and retry on their own schedule
help-arg-no-retry = Try once and stop (same as --retry-for 0)
help-arg-no-delay = Send queued reports one right after another, without the random pause between them that keeps the relay from linking them by time (for emergencies and tests)
help-arg-stall-timeout = Give up on a connection that hears nothing from the relay for this long, then reconnect. Raise it where the network drops out for long stretches. The relay may close sooner
help-report-check = Check a report file without sending it
help-report-check-file = Report JSON file
help-outbox = Reports waiting to be sent
help-outbox-list = List queued reports (destination and age only; contents are sealed)
help-outbox-flush = Try to send every queued report now, retrying on a bad link (see --retry-for)
help-outbox-cancel = Remove one queued report without sending it (its encrypted copy is deleted)
help-outbox-cancel-id = The item's id from `vigil outbox list` (`id` or `deposit_id` in its JSON; a unique prefix of at least 4 characters is enough)
contact-several = several contacts are named "{ $name }"; remove the stale one from the contacts directory
contact-damaged = contact file { $path } is damaged
outbox-damaged = outbox file { $path } is damaged

## vigil contact add|list|remove|verify
card-not-text = card is not text; is it the right file?
card-expiring = the card of "{ $name }" expires on { $when }; ask { $name } for a renewed card and import it with `vigil contact add`
contact-newer-exists = you already have a newer card for "{ $name }"; keeping it
contact-impersonation = a different NGO key is already saved as "{ $name }": this card may be an impersonation; compare safety numbers with the NGO, then rerun with --replace if it is genuine
contact-look-alike = the name "{ $name }" reads like your contact "{ $existing }" (it differs only in case, spacing or look-alike letters) but the card has a different NGO key: it may be an impersonation; compare safety numbers with the NGO, then rerun with --replace if it is genuine
contact-nothing-changed = nothing changed
contact-updated = Contact "{ $name }" updated: { $what }.
contact-safety-number = Safety number: { $sn }
contact-updated-note = The new card is signed by the same NGO key as the one you had; its safety number changes whenever the relay, its certificates or the staff keys change.
contact-added = Contact "{ $name }" { $action ->
        [replaced] replaced
       *[added] added
    }.
contact-compare = Compare it with the NGO in person or over a call you trust before sending anything sensitive (`vigil contact verify NAME` shows how).
contact-valid-until = The card is valid until { $when }.
contact-remove-waiting = { $count ->
        [one] 1 report copy
       *[other] { $count } report copies
    } for "{ $name }" still waiting in the outbox; deliver them first (`vigil outbox flush`), or rerun with --force to delete them with the contact
contact-removed = Contact "{ $name }" removed.
contact-removed-outbox = Deleted { $count ->
        [one] 1 unsent report copy
       *[other] { $count } unsent report copies
    } for it from the outbox.
contact-verify-number = Safety number of "{ $name }":
contact-verify-how = To verify it, compare it digit by digit with the number the NGO sees (`vigil card show` on its side), in person or on a voice or video call with someone from the NGO you recognise; not over the channel the card came by. If all 60 digits match, the card is the NGO's. If not, send nothing: the card may be an impersonation; get the card again in person.
contact-verify-cleared = "{ $name }" is no longer marked as verified.
contact-verify-ask = Did all 60 digits match? [y/N]
contact-verified = "{ $name }" is marked as verified ({ $when }).
contact-not-verified = "{ $name }" is not marked as verified. If the numbers differ, send it nothing and remove it (`vigil contact remove`).
contact-none = No contacts yet; add an NGO's card with `vigil contact add CARD_FILE`.
contact-list-item = { $name }  (relay { $relay }, { $keys } staff keys)
contact-list-sn = safety number { $sn }
contact-list-cert = relay certificate { $fp }
contact-list-more-relay = also relay { $relay }, certificate { $fp }
contact-list-next-cert = next relay certificate { $fp } (the relay is changing certificates; both are accepted)
contact-list-expired = EXPIRED on { $when }: reports cannot be sent to it; ask { $name } for a renewed card
contact-list-valid = valid until { $when }
contact-list-verified = safety number verified with the NGO ({ $when })
contact-list-unverified = NOT VERIFIED: compare the safety number with the NGO (`vigil contact verify "{ $name }"`)
report-unverified = the safety number of "{ $name }" is not verified; if someone could have swapped its card, compare the number with the NGO (`vigil contact verify "{ $name }"`)
outbox-not-delivered-yet = Not delivered for { $to } yet: { $error }

## What a newer card from the same NGO changes (`contact add`, `ngo set-relay`).
change-name = name changed from "{ $old }"
change-relay = relay moved from { $from } to { $to }
change-rotation-completed = relay certificate rotation completed (now { $fp })
change-cert = relay certificate changed to { $fp }
change-rotation-announced = relay certificate rotation announced (next certificate { $fp }, accepted from now on)
change-next = announced next relay certificate changed to { $fp }
change-rotation-withdrawn = announced relay certificate rotation withdrawn
change-mailbox = mailbox changed
change-relay-added = relay { $relay } added
change-relay-removed = relay { $relay } removed
change-relay-certs = certificate of relay { $relay } changed
change-staff = staff keys changed ({ $count } now)

## vigil card show
card-qr-too-large = card is too large for a QR code; share the card file instead
card-qr-too-wide = this card needs a QR code { $columns } columns wide, more than a terminal shows; share the card file instead
card-none = this home has no NGO card; pass a card file, or create an inbox with `vigil ngo init`
card-show-ngo = NGO:            { $name }
card-show-relay = Relay:          { $relay }
card-show-cert = Relay cert:     { $fp }
card-show-next-cert = Next relay cert: { $fp } (rotation announced; both accepted)
card-show-keys = Staff keys:     { $keys }
card-show-sn = Safety number:  { $sn }
card-show-valid = Valid until:    { $when }
card-show-more-relay = Also relay:     { $relay }

## vigil ngo init|add-staff|remove-staff|renew-card|set-relay
ngo-exists = { $home } already holds an NGO inbox; use another --home for a second NGO
ngo-none = no NGO inbox in { $home }; create one with `vigil ngo init` or pass the right --home
ngo-bad-fingerprint = { $flag } is not a SHA-256 fingerprint; copy it from `vigil-relay fingerprint`
ngo-registering = Registering a mailbox at { $relay } ...
inbox-relay-unreachable = relay { $relay } was not fetched from: { $error }; the other relays were
inbox-status-unreachable = relay { $relay } did not answer: { $error }
inbox-duplicates = { $count ->
    [one] { $count } copy of a report already here (sent via several relays) was acknowledged and not stored again.
   *[other] { $count } copies of reports already here (sent via several relays) were acknowledged and not stored again.
    }
ngo-relay-pairs = { $relays ->
    [one] --relay is given once
   *[other] --relay is given { $relays } times
    } and { $fingerprints ->
    [one] --relay-fingerprint once
   *[other] --relay-fingerprint { $fingerprints } times
    }; give each --relay its own --relay-fingerprint, in the same order
ngo-register-pending = relay { $relay } could not be reached ({ $error }); it is on the card, and the mailbox is registered there at the next `vigil inbox fetch` that reaches it (until then, copies sent there wait in reporters' outboxes)
ngo-registered-late = Mailbox registered at { $relay } (it could not be reached when the inbox was created).
ngo-no-such-relay = the card has no relay { $relay }; its relays: { $relays }
ngo-last-relay = { $relay } is the card's only relay; add another with --add-relay before removing it
ngo-relay-on-card = relay { $relay } is already on the card
ngo-too-many-relays = a card lists at most { $max } relays; take one off first (--remove-relay)
ngo-relay-removed-note = This inbox no longer fetches from { $relay }. Reporters with the old card may still send there until they import the new one.
ngo-wrong-mailbox = the relay at { $relay } answered with a mailbox id that does not belong to our key; do not use this relay
ngo-created = NGO inbox "{ $name }" created in { $home }
ngo-card-written = Recipient card written to { $path } (show it as a QR code: vigil card show --qr)
ngo-compare = Reporters should compare this number with the one `vigil contact add` shows them, over a channel you trust.
ngo-too-many-staff = a card holds at most { $max } staff keys; remove one first
ngo-bad-recipient = --recipient is not an age recipient (age1...)
ngo-key-on-card = this key is already on the card
ngo-staff-added = Added staff key for { $name } ({ $recipient }); the card now has { $keys } keys.
ngo-staff-added-note = Give reporters the updated card: reports sealed with the old card are not readable by the new key.
ngo-no-such-staff = no staff member named "{ $name }" on this NGO's card; the staff are { $staff }
ngo-several-staff = several staff members are named "{ $name }"; give the key (age1...) of the one to remove instead
ngo-last-staff = "{ $name }" holds the only staff key on the card, and a card needs one; add the new key first (`vigil ngo add-staff --name NAME`), then remove this one
ngo-staff-needed = { $count ->
        [one] 1 report
       *[other] { $count } reports
    } in this inbox can only be opened with the key of "{ $name }", which removing it would delete; read them first, or keep a copy of { $path } somewhere safe, then rerun with --force
ngo-staff-removed = Removed the staff key of { $name } ({ $recipient }); the card now has { $keys ->
        [one] 1 key
       *[other] { $keys } keys
    }.
ngo-staff-key-deleted = Deleted its secret key from this home ({ $path }).
ngo-staff-removed-note = Give every reporter the re-issued card: until they import it, their reports are still sealed to the removed key too. Reports sealed before stay readable by it.
ngo-no-local-staff = Note: this home now holds no staff key, so it cannot open reports; fetch and read them where a staff key is.
ngo-renewed-sn = Safety number: { $sn } (a renewal alone does not change it)
ngo-renewed-written = Renewed card written to { $path }.
ngo-renewed-note = Hand the renewed card to every reporter before the old one expires: they cannot send with an expired card.
ngo-valid-for-zero = --valid-for must be at least 1s; e.g. 365d for a year
ngo-card-expiring = this NGO's card expires on { $when }; run `vigil ngo renew-card --card-out FILE` and hand the renewed card to reporters
ngo-card-expired = this NGO's card expired on { $when }: reporters cannot send to it; run `vigil ngo renew-card --card-out FILE` and hand the renewed card to reporters
ngo-valid-until = The card is valid until { $when }; renew it before then with `vigil ngo renew-card`.
ngo-nothing-to-change = nothing to change; give --relay, --relay-fingerprint, --next-fingerprint, --clear-next, --add-relay or --remove-relay (see `vigil ngo set-relay --help`)
ngo-next-is-current = --next-fingerprint is the relay's current certificate; give the fingerprint of the next one (`vigil-relay fingerprint --next`)
ngo-reissued-unchanged = Card re-issued; the relay settings were already as given.
ngo-reissued = Card re-issued: { $changes }.
ngo-new-card-written = New recipient card written to { $path }.
ngo-hand-new-card = Hand the new card to every reporter (vigil card show --qr, or the card file) the way you handed out the first one.
ngo-rotation-note = Reporters with this card accept the relay's current certificate and the next one ({ $fp }). Reporters still holding an older card will be refused once the operator promotes the next certificate: reach them all before that.
help-arg-valid-for = How long the issued card is valid, e.g. 365d, 52w, 12h (at least 1s). Reporters are warned 30 days before it expires and cannot send with an expired card; renew it with `vigil ngo renew-card`
help-ngo-init = Create the NGO's keys, register its mailbox at the relay and write its recipient card
help-ngo-init-name = The NGO's name as reporters will see and address it
help-ngo-init-relay = Relay address, HOST:PORT. Repeat for more relays (at most 4), each with its own --relay-fingerprint, in the same order: reports are deposited at every one
help-ngo-init-relay-fingerprint = The relay certificate's SHA-256 fingerprint (from `vigil-relay fingerprint`); one per --relay
help-ngo-init-card-out = Where to write the recipient card to hand to reporters
help-ngo-init-staff = Name of the first staff member, whose key is created on this machine
help-ngo-add-staff = Add a staff key: every later report is readable by each staff key on the card
help-ngo-add-staff-name = Staff member's name (kept on this machine only, never on the card)
help-ngo-add-staff-recipient = Their existing age recipient (age1pq1..., or age1... on a card of classic keys). Without it a new key of the card's kind is made on this machine
help-ngo-add-staff-card-out = Write the updated card here too
help-ngo-remove-staff = Remove a staff key from the card and re-issue it; the key is deleted from this home if it is here. Reports already sealed to the key stay readable by it
help-ngo-remove-staff-after =
    Removing a key changes the card: give every reporter the re-issued card (`--card-out FILE`, or
    `vigil card show --qr`). Until a reporter imports it, their reports are still sealed to the
    removed key too. Reports sealed before the removal stay readable by the removed key. If reports
    already fetched into this home can only be opened with the key, the removal is refused unless
    --force (they would become unreadable here). The relay mailbox and its key do not change.
help-ngo-remove-staff-staff = Staff member's name as given to `add-staff` (case does not matter), or their key (age1...)
help-ngo-remove-staff-name = The same as NAME, as a flag (like `add-staff --name`)
help-ngo-remove-staff-force = Delete the key from this home even if reports already fetched here can only be opened with it (they become unreadable on this machine). Without it, that case is refused
help-ngo-remove-staff-card-out = Write the re-issued card here too
help-ngo-renew-card = Re-issue the card unchanged but with a new expiry; hand it to reporters before the old one expires
help-ngo-renew-card-card-out = Write the renewed card here too
help-ngo-set-relay = Change the relay address or certificate fingerprints and re-issue the card, e.g. to announce a relay certificate rotation (see docs/operations.md)
help-ngo-set-relay-after =
    Certificate rotation (the operator runs `vigil-relay cert rotate`, then gives you the fingerprint):
      vigil ngo set-relay --next-fingerprint NEXT_FP --card-out ngo.card   # hand the card to reporters
    {"  ..."} the operator runs `vigil-relay cert promote` and restarts the relay {"..."}
      vigil ngo set-relay --relay-fingerprint NEXT_FP --card-out ngo.card  # ends the overlap
    With several relays, add --which HOST:PORT to change another than the first. More relays:
      vigil ngo set-relay --add-relay HOST:PORT --relay-fingerprint FP --card-out ngo.card
      vigil ngo set-relay --remove-relay HOST:PORT --card-out ngo.card
help-ngo-set-relay-relay = New relay address, HOST:PORT (the mailbox is registered there before the card changes)
help-ngo-set-relay-relay-fingerprint = New current relay certificate fingerprint. If it equals the announced next one, the next one is cleared: the rotation is complete. With --add-relay: the added relay's fingerprint
help-ngo-set-relay-next-fingerprint = Announce the relay's next certificate (`vigil-relay fingerprint --next`): reporters with the new card accept both until you issue a card without it
help-ngo-set-relay-clear-next = Remove the announced next certificate from the card
help-ngo-set-relay-which = Which of the card's relays --relay, --relay-fingerprint, --next-fingerprint and --clear-next change, by its address (default: the first)
help-ngo-set-relay-add-relay = Add a relay to the card (at most 4 in all), its fingerprint given with --relay-fingerprint; the mailbox is registered there before the card changes
help-ngo-set-relay-remove-relay = Take a relay off the card (the last one stays). Fetch first: this inbox no longer fetches from it
help-ngo-set-relay-card-out = Write the re-issued card here too
help-card-show = Print a card with its safety number; `--qr` draws it as a QR code for a phone to scan
help-card-show-file = A card file; without it, this home's NGO card
help-card-show-qr = Draw the card as a QR code in the terminal
help-inbox-fetch = Download new reports, decrypt and verify them, store them here, then acknowledge them
help-inbox-list = List received reports, most urgent first
help-inbox-show = Show one report, with its thread (receipt, replies, the reporter's answers)
help-inbox-show-id = Report id from `vigil inbox list` (a unique prefix is enough)
help-inbox-status = Show how full this NGO's mailbox at the relay is, and whether reports were refused because it was full
help-inbox-rejected = List or delete the envelopes kept under inbox/rejected/ (invalid, replayed, or sealed for a staff key this inbox does not hold)
help-inbox-rejected-list = List the kept envelopes, oldest first, with why each was kept
help-inbox-rejected-clear = Delete kept envelopes: by default the invalid and replayed ones (evidence you have looked at), with --all also those sealed for a missing staff key (which a returning key would still open)
help-inbox-rejected-clear-all = Also delete envelopes sealed for a staff key this inbox does not hold
help-inbox-rejected-clear-older-than = Delete only envelopes received longer ago than this (e.g. 30d)

## vigil inbox fetch|list|status
unit-bytes = { $n } bytes
unit-days = { $n } days
unit-hours = { $n } hours
unit-seconds = { $n } seconds
inbox-status = Mailbox at { $relay }: { $items } of { $max_items } reports, { $bytes } of { $max_bytes } ({ $fill }% full). Unfetched reports are deleted after { $expiry }.
inbox-refused-full = Warning: the relay refused { $count ->
        [one] 1 report
       *[other] { $count } reports
    } because this mailbox was full; run `vigil inbox fetch` until it is empty so senders' retries get through, and tell the relay operator if junk keeps filling it.
inbox-nearly-full = Warning: this mailbox is { $fill }% full at the relay; run `vigil inbox fetch` now, or new reports will be refused once it is full.
inbox-line-times = happened { $happened }, signed { $signed }, received { $received }, from reporter { $sender }
inbox-time-warning = Warning: report { $id } was { $warning }
inbox-signed-before = signed { $days } days before it was received: it may be an old report sent again (a replay), or the reporter's clock is wrong; check before acting on it
inbox-signed-after = signed { $days } days after it was received: the reporter's clock is wrong, or the time was forged; check before acting on it
inbox-unreadable = Warning: stored report { $id } does not open any more: { $error }
inbox-empty = Inbox is empty; run `vigil inbox fetch` to download new reports.
inbox-no-staff-key = no staff key is held in this inbox; add one with `vigil ngo add-staff --name NAME`
inbox-no-key-item = Warning: item { $id } could not be opened: { $why }. It is kept in inbox/rejected/{ $id }.age.
inbox-rejected-item = Rejected item { $id }: { $error } (kept in inbox/rejected)
inbox-trimmed = Warning: deleted the oldest { $count ->
        [one] 1 kept envelope
       *[other] { $count } kept envelopes
    } from inbox/rejected/ to keep it within { $max_items ->
        [one] 1 item
       *[other] { $max_items } items
    } and { $max_mb } MB{ $no_key ->
        [0] {""}
       *[other] , { $no_key } of them sealed for a staff key this inbox does not hold
    }; someone may be flooding this mailbox with junk. See `vigil inbox rejected list`; VIGIL_REJECTED_MAX_ITEMS and VIGIL_REJECTED_MAX_MB raise the bound.
inbox-fetched = Fetched { $count ->
        [one] 1 new report
       *[other] { $count } new reports
    }{ $rejected ->
        [0] {""}
       *[other] , rejected { $rejected }
    }{ $replays ->
        [0] {""}
        [one] , 1 replay of reports already here
       *[other] , { $replays } replays of reports already here
    }.
inbox-no-key-kept = Warning: { $count ->
        [one] 1 report
       *[other] { $count } reports
    } ({ $new } new in this fetch) cannot be read: sealed for no staff key this inbox holds, kept under inbox/rejected/. Was a staff member's key removed, or is this machine missing one? Once the key is among this inbox's staff keys again, `vigil inbox fetch` opens them.
inbox-replay = Replay: item { $id } repeats report { $original } (signed { $signed }), which is already in this inbox; kept in inbox/rejected, not listed as new. Someone may be re-sending a captured report.
inbox-opens-now = Item { $id }, kept because no staff key here opened it, opens now.
inbox-opens-now-rejected = Item { $id }, kept because no staff key here opened it, opens now but is rejected: { $error } (kept in inbox/rejected)
inbox-bad-id = "{ $id }" is not a report id; see `vigil inbox list`
inbox-no-such-id = no report with id { $id } in this inbox; see `vigil inbox list`
inbox-ambiguous-id = id { $id } matches several reports; give more characters

## vigil inbox rejected list|clear
rejected-empty = inbox/rejected/ is empty.
rejected-unknown-time = received at an unknown time
rejected-received = received { $when }
rejected-total = { $count ->
        [one] 1 kept envelope
       *[other] { $count } kept envelopes
    }, { $bytes } in all. `vigil inbox rejected clear` deletes the invalid and replayed ones; --all also those sealed for a missing staff key.
rejected-deleted = Deleted { $count ->
        [one] 1 kept envelope
       *[other] { $count } kept envelopes
    } ({ $bytes }) from inbox/rejected/.
rejected-kept-no-key = Kept { $count ->
        [one] 1 envelope
       *[other] { $count } envelopes
    } sealed for a staff key this inbox does not hold: they open once the key is back; --all deletes them too.

## A command line that does not parse (outside English; in English clap's own words are shown).
usage-missing = the following required arguments were not provided: { $args }
usage-unknown-arg = unexpected argument '{ $arg }' found
usage-unknown-command = unrecognized subcommand '{ $command }'
usage-invalid-value = invalid value '{ $value }' for '{ $arg }'
usage-conflict = the argument '{ $arg }' cannot be used with '{ $prior }'
usage-suggest = tip: a similar one exists: '{ $suggestion }'
usage-more = For more information, try '--help'.

## vigil inbox show: the labels around a report (its own words are shown as written). "When:"
## and "Where:" with their spaces are seven characters wide; keep that width in a translation.
show-report = Report { $id }
show-when = When:  { $when }
show-precision = (to the { $precision })
show-where = Where: { $place }
show-perpetrator = perpetrator: { $agency }
show-unknown = unknown
show-vehicle = vehicle: { $description } plate { $plate }
show-witness = witness: { $name }
show-witness-contact = (contact: { $contact })
show-requested-action = Requested action: { $action }
show-other-fields = Other fields:
show-signed = Signed:   { $signed }, received { $received }
show-unknown-time = at an unknown time
show-warning = Warning:  this report was { $warning }
show-signed-by = Signed by reporter key { $key } (sent to { $count ->
        [one] 1 NGO
       *[other] { $count } NGOs
    }: { $names })
show-unnamed-ngo = an NGO not named (key { $key }…)
show-this-ngo = { $name } (this NGO)
help-panic = Destroy this device's Vigil state now: keys first (so nothing left can be decrypted), then every file of the home. Asks nothing and needs no passphrase; cannot be undone

## vigil panic
panic-nothing = Nothing to destroy: { $home } does not exist.
panic-done = Destroyed { $keys ->
        [one] 1 key file
       *[other] { $keys } key files
    } in { $keys_ms } ms and removed { $files ->
        [one] 1 other file
       *[other] { $files } other files
    } in { $total_ms } ms. This device's Vigil state cannot be read any more.

## The encrypted home (issue 12)
vault-no-passphrase = This Vigil home is encrypted and there is no terminal to ask for its passphrase; set VIGIL_PASSPHRASE_FILE to a file holding it, or run `vigil unlock` first.
vault-prompt-unlock = Passphrase for this Vigil home:
vault-prompt-choose = Choose a passphrase for this Vigil home (it protects everything on this device; a long sentence is best):
vault-prompt-new = New passphrase:
vault-prompt-again = Type it again:
vault-empty-passphrase = The passphrase is empty; type a long one.
vault-passphrases-differ = The two passphrases differ; run the command again.
vault-wrong-passphrase = Wrong passphrase for this home; nothing was changed (try again, or run `vigil panic` if the device is not safe).
unlock-done = Unlocked until { $until } ({ $minutes } min). Commands in this home need no passphrase until then, or until `vigil lock`.
lock-done = Locked: the next command in this home asks for the passphrase.
lock-none = No unlock session was open for this home.
passphrase-changed = Passphrase changed. The old one no longer opens this home.
unlock-too-long = An unlock session lasts at most { $max } hours; choose a shorter --for.
help-unlock = Unlock this home for a working session: commands need no passphrase until the time is up or `vigil lock` (the key is held in memory by a small background process, never in a file)
help-unlock-for = How long the session lasts (e.g. 15m, 2h; at most 12h)
help-lock = End the unlock session: the next command asks for the passphrase
help-passphrase = Change the passphrase of this home
help-passphrase-change = Choose a new passphrase (asked twice on a terminal; scripts give the current one in VIGIL_PASSPHRASE_FILE and the new one with --new-passphrase-file)
help-passphrase-change-new-passphrase-file = Read the new passphrase from this file (for scripts)
help-ngo-export-staff-key = Write a copy of a staff key held in this home to a file, as an age identity file (for moving it to another machine or a safe; the file is as secret as the key)
help-ngo-export-staff-key-name = The staff member's name
help-ngo-export-staff-key-out = Where to write the key (created 0600; refuses to overwrite)
help-agent-serve = The unlock session's background process (started by `vigil unlock`)

## Check-in alerts (issue 12)
vault-prompt-duress = Choose a duress passphrase (a check-in with it looks normal here but releases the alert at once; it must differ from the home's):
checkin-not-armed = No check-in alert is armed on this device; prepare one with `vigil checkin arm --to NGO --every 6h --grace 1h --alert FILE`.
checkin-already-armed = A check-in alert is already armed on this device; withdraw it first with `vigil checkin disarm`.
checkin-bad-interval = { $flag } must be from { $min } second to { $max_days } days.
checkin-retrying = The relay could not be reached ({ $error }); trying again...
checkin-no-duress = No duress passphrase: give one with --duress-passphrase-file F (or run on a terminal to be asked).
checkin-same-passphrases = The duress passphrase must differ from this home's passphrase; choose another.
checkin-duress-explain = Now choose a duress passphrase. If someone forces you to check in, use it: the check-in looks the same on this device, and the NGOs are alerted at once.
checkin-armed = Alert armed for { $names }: check in (`vigil checkin`) every { $every }; if no check-in comes within { $grace } after a deadline, the relay releases it. Next check-in due by { $due }.
checkin-armed-duress = Remember both passphrases, and write neither on this device.
checkin-done = Checked in. Next check-in due by { $due }.
checkin-disarmed = Alert withdrawn: the relay deleted it.
checkin-status = Alert for { $names }: last check-in { $last }; next due by { $due }; released after { $release } without one.
checkin-none = No check-in alert is armed on this device.
help-checkin = Check in, so that your prepared alert stays sealed; `vigil checkin arm` prepares it
help-checkin-arm = Prepare the alert and leave it sealed at the NGOs' relays until you stop checking in
help-checkin-arm-to = NGO to alert (a contact's name); repeat for several
help-checkin-arm-every = How often you will check in (e.g. 6h, 30m; 1s to 30d)
help-checkin-arm-grace = Slack after a missed check-in before the alert goes out (e.g. 1h)
help-checkin-arm-alert = The alert: a report file (JSON, as for `report send`), e.g. kind "disappearance"
help-checkin-arm-duress-passphrase-file = Read the duress passphrase from this file (for scripts; asked on a terminal otherwise)
help-checkin-status = When the next check-in is due, and when the alert would be released
help-checkin-disarm = Withdraw the alert (with your normal passphrase)
inbox-alert-missed = CHECK-IN ALERT: the reporter stopped checking in (last check-in { $last }); the relay released this at { $released }.
inbox-alert-duress = CHECK-IN ALERT UNDER DURESS: the reporter checked in with their duress passphrase (last normal check-in { $last }); the relay released this at { $released }.
inbox-alert-no-checkin = none since arming at { $armed }
advice-checkin-unreachable = The check-in did not reach the relay, so the deadline did not move: try again soon (`vigil checkin`), and if you cannot before the deadline, tell the NGO another way.
advice-checkin-gone = The relay no longer holds this alert: it was released (the NGO has it) or withdrawn. `vigil checkin disarm` clears it from this device; then arm a new one.
checkin-disarmed-gone = Alert cleared from this device; the relay no longer held it (it was released to the NGO, or withdrawn before).

## Attachments (issue 13)
attach-removed = Attached { $name } ({ $size }); removed: { $what }.
attach-clean = Attached { $name } ({ $size }); it carried no metadata to remove.
attach-kept = Attached { $name } ({ $size }) with its metadata, as asked (--keep-metadata).
attach-not-removed = { $name } ({ $size }) is attached as it is: { $why }. Remove it from the command if that could identify you.
attach-as-is = Attached { $name } ({ $size }) as it is.
# What the scrubber removed and why it left a file alone (issue 13, helper h-scrub: HEIC/PDF
# scrubbing, localised removals). `scrub-what-ID` and `scrub-warn-ID` follow the ids of
# client/src/scrub/mod.rs (`What::id`, `Warning::id`); `--json` carries the ids and the English.
scrub-what-exif-xmp = EXIF/XMP (GPS position, camera model and serial number, owner, times, thumbnail)
scrub-what-exif = EXIF (GPS position, camera model and serial number, times)
scrub-what-xmp = XMP (author, editing software, place, times)
scrub-what-iptc = IPTC/Photoshop (author, captions, place, times)
scrub-what-mpf = extra images (MPF: previews, depth or HDR maps with their own metadata)
scrub-what-app-other = other application metadata (maker notes, C2PA, stereo, JFXX thumbnail)
scrub-what-comments = comments
scrub-what-jfif-thumbnail = JFIF thumbnail (a small copy of the picture, possibly before editing)
scrub-what-trailer-media = data after the end of the image (appended images, motion-photo video)
scrub-what-trailer = data after the end of the image
scrub-what-png-text = text (XMP, author, software, comments, creation time)
scrub-what-mod-time = last-modification time
scrub-what-c2pa = C2PA content credentials (signer, device, edit history)
scrub-what-video-meta = video metadata (GPS position, phone make and model, software, owner, recording date)
scrub-what-times = creation and modification times
scrub-what-other-items = other metadata items (XML descriptions, content credentials)
scrub-what-pdf-info = document information (author, title, subject, keywords, the program that made it, times)
scrub-warn-heic = this HEIC/HEIF photo is built in a way Vigil cannot change safely, so its EXIF (GPS position, camera, serial number, times) and XMP stay in it; convert the photo to JPEG first (for example with a screenshot or the phone's "most compatible" camera setting)
scrub-warn-mp4 = videos (MP4/MOV) carry metadata Vigil cannot remove yet: often the GPS position, the phone model, the recording time and sometimes the owner's name
scrub-warn-mp4-data-track = this video has a data track besides picture and sound (often GPS or sensor data recorded with it, a timecode or subtitles) that Vigil cannot remove
scrub-warn-pdf = this PDF is built in a way Vigil cannot change safely, so its metadata stays in it: author name, the program and computer that made it, creation times, and earlier versions of the text
scrub-warn-pdf-compressed = this PDF keeps its metadata (author name, the program that made it, times) in compressed parts that Vigil cannot change without rewriting the file; print it to a new PDF or scan it first
scrub-warn-pdf-encrypted = this PDF is encrypted, so Vigil cannot remove its metadata (author name, the program that made it, times)
scrub-warn-office = Office documents carry metadata Vigil cannot remove: the author's and editors' names, company, edit times, revision history and comments
scrub-warn-too-large = larger than { $mib } MiB, too large to remove its metadata on this device
scrub-warn-other = this file may carry identifying metadata Vigil cannot remove
help-report-send-attach = Attach a file (photo, video, document, audio) or every file of a directory; repeat for more. Identifying metadata (GPS position, device, owner, times) is removed from photos and videos first where Vigil can, and you are told what was removed or could not be
help-report-send-keep-metadata = Send attachments exactly as they are, metadata included (an NGO sometimes needs it to verify where and when a photo was taken); their SHA-256 is signed with the report
show-attachments = Attachments ({ $count }):
show-attachment-metadata-kept = metadata kept by the reporter
show-attachment-missing = not downloaded yet
export-not-downloaded = { $name } is not in this inbox yet; run `vigil inbox fetch` first.
export-mismatch = { $name } does not match what the reporter signed (its size or SHA-256 differs): it was damaged or altered on the way, and was not written.
export-done = Exported report { $id } to { $dir }: the report as JSON and { $count } attachments, each checked against the reporter's signature.
export-plaintext = These files are decrypted: keep them on an encrypted disk, and delete them when the case no longer needs them.
export-incomplete = { $count } attachments could not be exported (see above).
help-inbox-export = Write one report (JSON) and its attachments, decrypted and verified, into a directory
help-inbox-export-id = Report id from `vigil inbox list` (a unique prefix is enough)
help-inbox-export-out = The directory to write into (made if missing). What lands there is plaintext: choose an encrypted disk
## vigil inbox watch
help-inbox-watch = Stay connected to every relay of this NGO's card and fetch, store and show each new report as it arrives, urgent ones first; until Ctrl-C or SIGTERM
help-inbox-watch-for = Stop after this long (e.g. 30s, 8h) instead of running until stopped
help-inbox-watch-exec = Run this command (with sh -c) for each new urgent report; the report is in the environment: VIGIL_REPORT_ID, VIGIL_REPORT_URGENCY, VIGIL_REPORT_KIND, VIGIL_REPORT_TITLE, VIGIL_RELAY. Quote them, e.g. notify-send "$VIGIL_REPORT_TITLE"
inbox-watch-started = Watching { $count ->
        [one] { $count } relay
       *[other] { $count } relays
    } for new reports; Ctrl-C stops.
inbox-watch-report = { $flag }{ $id }  { $urgency }  { $kind }  { $title }  (via { $relay })
inbox-watch-no-wait = relay { $relay } is older than the live inbox (it does not know the Wait request); it is not watched, and `vigil inbox fetch` still fetches from it
inbox-watch-no-relay-waits = no relay of this NGO's card supports the live inbox yet; run `vigil inbox fetch` instead, or ask the relay operators to upgrade
inbox-watch-lost = relay { $relay }: { $error }; trying again in { $secs } s
inbox-watch-back = relay { $relay } is reachable again; watching it
inbox-watch-stopped = Stopped watching; { $count ->
        [one] { $count } new report was shown
       *[other] { $count } new reports were shown
    }.
inbox-watch-exec-failed = the --exec command for report { $id } failed: { $error }
outbox-spacing = Waiting { $delay } before the next report, so the relay cannot tie them together by time (--no-delay skips this).
progress-upload = Sending to { $name }
progress-download = Receiving { $name }
progress-encrypt = Encrypting { $name }
progress-decrypt = Decrypting { $name }
progress-check = Checking { $name }
progress-line-start = { $what }: { $done } of { $total }
progress-line = { $what }: { $done } of { $total }, { $rate }/s, about { $left } left
progress-done = { $what }: { $total } done in { $time } ({ $rate }/s)
inbox-attachment-missing = the relay no longer holds the attachment { $name } (it expired, or the reporter never finished sending it); the report itself is here.

## Replies and receipts (issue 15): `vigil report status|reply`, `vigil inbox reply`.
status-none = No report sent from this device is waiting for an answer.
status-report = Report { $id } "{ $title }", signed { $signed }
status-queued = { $ngo }: queued (still in the outbox)
status-stored = { $ngo }: stored at the relay, not yet delivered
status-delivered = { $ngo }: delivered (receipt signed by the NGO at { $at })
status-you = you
status-expired = no longer looked for answers since { $at }
status-new-reply = New reply from { $ngo } to report { $id }.
status-forged = a message in the thread of report { $id } with { $ngo } is not genuine and is not shown: { $why }
status-register-pending = the reply mailbox for { $ngo } is not registered at { $relay } yet ({ $error }); it will be tried again at the next `vigil report status`
status-relay-unreachable = could not look for answers at { $relay }: { $error }
status-answer-queued = Answer to { $ngo } about report { $id } encrypted and queued.
status-no-such-report = no report { $id } was sent from here; see `vigil report status`
status-without-replies = (sent without replies: no receipt or answer will come)
status-sent-without-replies = report { $id } was sent with --no-replies, so the NGO has no way to read an answer in its thread; send a new report instead
status-which-ngo = report { $id } went to several NGOs; say which with --to
status-not-sent-to = report { $id } was not sent to "{ $ngo }"; see `vigil report status`
status-no-contact = { $ngo } is no longer among your contacts; add its card again with `vigil contact add`
thread-too-many-attachments = a message takes at most { $max } attachments, and { $count } were given; send the rest in another message
thread-bad-text = the text must be 1 to { $max } bytes; shorten it or send it in several parts
inbox-answer = The reporter answered in the thread of report { $id } (`vigil inbox show { $id }`).
inbox-no-reply-key = report { $id } carries no reply key (it was sent by an older version of Vigil, or its reporter asked for no answers)
inbox-reply-sent = Reply to the reporter of { $id } signed, encrypted and stored at the relay.
inbox-reply-kept = the reply is kept in this inbox and will be sent again at the next `vigil inbox fetch`
inbox-reply-outbox-to = the reporter of { $id }
thread-attachment = attachment: { $name } ({ $size })
thread-attachment-saved = attachment: { $name } ({ $size }), saved as { $path }
inbox-reply-no-relay = none of the relays the report names is on this NGO's card
inbox-thread-pending = { $count ->
        [one] 1 receipt or reply
       *[other] { $count } receipts or replies
    } for report { $id } could not be deposited yet ({ $error }); the next `vigil inbox fetch` tries again
show-thread = Thread:
show-receipt-sent = receipt sent { $at }
show-receipt-pending = receipt not sent yet
show-thread-ngo = this NGO
show-thread-reporter = the reporter
help-report-status = Show what became of each report sent from here, per NGO: queued, stored at the relay, or delivered (the NGO's signed receipt), and the NGO's replies, each verified against its card
help-report-status-offline = Show what is known on this device without contacting any relay
help-report-status-save-to = Write the attachments of the NGO's replies, decrypted and verified, into this directory (plaintext: choose a place you can protect). Without it they stay encrypted on this device
help-report-reply = Answer the NGO in a report's thread (after a reply, or to add something)
help-report-reply-id = Report id from `vigil report status` (a unique prefix is enough)
help-report-reply-message = The answer's text
help-report-reply-file = Read the answer's text from this file (UTF-8)
help-report-reply-to = The NGO to answer, by the name on its card; needed when the report went to several
help-report-reply-attach = Attach a file (repeat for more, at most 16); its metadata is removed first, as for a report's attachments
help-report-reply-keep-metadata = Send attachments exactly as they are, metadata included
help-report-send-replies-for = How long to look for the NGO's receipt and replies after the thread's last message (`vigil report status`), e.g. 30d; the reply mailbox made for the report is given up after it
help-report-send-no-replies = Ask for no receipt and no replies: the report carries no reply mailbox
help-inbox-reply = Reply to the reporter of one report, signed by this NGO's identity key and encrypted to the reply key the report carries
help-inbox-reply-id = Report id from `vigil inbox list` (a unique prefix is enough)
help-inbox-reply-message = The reply's text
help-inbox-reply-file = Read the reply's text from this file (UTF-8)

# Post-quantum staff keys and key rotation (issue 16)
ngo-staff-key-needs-pq = this NGO's card holds post-quantum staff keys (age1pq1...), and a card never mixes them with classic ones; ask the staff member for a post-quantum recipient (`vigil age keygen --pq`)
ngo-staff-key-needs-classic = this NGO's card holds classic staff keys (age1...), and a card never mixes them with post-quantum ones; move the whole card with `vigil ngo rotate-keys` first, or give an age1... recipient
ngo-rotate-pair = --staff-recipient takes NAME=RECIPIENT, not "{ $pair }"
ngo-rotate-remote-staff = the keys of { $names } are not on this machine; ask each for a post-quantum recipient (`vigil age keygen --pq`) and pass --staff-recipient NAME=age1pq1...
ngo-keys-rotated = The card now has { $keys } new post-quantum staff keys. The old keys stay in this home until { $until } for reports still sealed to them, then `vigil inbox fetch` destroys them.
ngo-retired-keys-destroyed = Destroyed { $count } retired staff keys; stored reports that only they opened were re-sealed to the current keys.
help-ngo-init-classic-keys = Make classic X25519 staff keys (age1...) instead of post-quantum ones (age1pq1...), for reporters whose Vigil predates post-quantum keys. Reports to them could be opened by a future quantum computer; move later with `vigil ngo rotate-keys`
help-ngo-rotate-keys = Replace every staff key on the card by a new post-quantum key and re-issue the card. The old keys are kept only as long as reports sealed to them may still arrive, then destroyed
help-ngo-rotate-keys-after =
    Hand the re-issued card to every reporter (`--card-out FILE`, or `vigil card show`). Until a
    reporter imports it, their reports are still sealed to the old keys, which this home keeps until
    the old card's expiry plus --keep-old-keys; `vigil inbox fetch` destroys them after that date.
help-ngo-rotate-keys-staff-recipient = The new post-quantum recipient of a staff member whose key is not on this machine, as NAME=age1pq1... (they make it with `vigil age keygen --pq`); repeat for each
help-ngo-rotate-keys-keep-old-keys = How long after the old card's expiry the old keys are kept, for reports sealed to it that are still in reporters' outboxes or at the relay, e.g. 60d
help-ngo-rotate-keys-card-out = Write the re-issued card here too
card-qr-part = Part { $part } of { $parts } (a card with post-quantum keys is too large for one code): scan every part.

# Prekeys: forward secrecy (issue 16)
prekey-made = Made a new prekey ({ $id }), valid until { $until }; reporters seal each report to it as well as to the staff keys.
prekey-publish-failed = could not publish the current prekey at { $relay } ({ $error }); reporters who reach only that relay seal with the long-term keys alone until the next fetch publishes it
prekey-destroyed = Destroyed { $count } expired prekeys: what was sealed to them can no longer be opened, by anyone, from a copy of a relay.
prekey-bad-lifetime = --lifetime must be between 1s and 31d: a prekey that lives longer protects little more than a long-term key
prekey-off = Prekeys are off: reports are protected by the long-term staff keys only. Turn them on with `vigil ngo prekeys --on`.
prekey-policy = Prekeys: each valid for { $lifetime }, kept { $grace } after it expires for reports still on their way.
prekey-line = { $id }  valid until { $until }  published at { $relays } relays
prekey-lookup-slow = the relay did not answer in time
prekey-unreachable = no relay of the card could be asked for the NGO's current prekey ({ $error })
prekey-none-published = the NGO has not published a prekey at its relays
report-prekey-used = { $name }: sealed to its current prekey as well (forward secrecy until { $until }).
report-prekey-not-used = { $name }: sealed to its long-term keys only, without forward secrecy: { $why }
inbox-prekey-gone = it is sealed to a prekey this inbox no longer holds (destroyed after it expired and its grace period passed); nobody can open it any more
help-ngo-prekeys = Show the NGO's prekeys (short-lived keys reporters seal each report to, for forward secrecy) and their policy, or change it
help-ngo-prekeys-lifetime = How long each new prekey is valid, e.g. 7d (at most 31d). A shorter lifetime than the newest prekey's makes and publishes a new one now
help-ngo-prekeys-grace = How long an expired prekey is kept for reports sealed to it that are still on their way, e.g. 7d; after that, the next fetch that empties every relay destroys it
help-ngo-prekeys-renew = Make and publish a new prekey now
help-ngo-prekeys-off = Stop making and publishing prekeys (reports then have the long-term keys' protection only)
help-ngo-prekeys-on = Make and publish prekeys again (the default)
help-inbox-reply-attach = Attach a file (repeat for more, at most 16); its metadata is removed first, as for a report's attachments
help-inbox-reply-keep-metadata = Send attachments exactly as they are, metadata included
