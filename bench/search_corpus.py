"""Realistic help-desk text for the search benchmark (bench/search.py), fast enough for 1 M messages.

Everything here is plain Python (no numpy): every slot of a sentence template draws from a ranked
word list with Zipf-Mandelbrot weights (weight 1 / (rank + q) ** s). The draws come from large
pre-sampled buffers (`random.choices(k=65536)`), so one draw costs a `next()`. Templates mix fixed
help-desk phrasing ("I was charged twice", "Could you send me a screenshot") with slots for nouns,
verbs, features, plans, error messages, order numbers, error codes, names, project and company
names, so the corpus has a few very common words (account, payment, error, order), a long
middle and a long tail of rare tokens.

    python bench/search_corpus.py          # print one sample ticket (subject + conversation)
"""

from __future__ import annotations

import itertools
import random
import string
from bisect import bisect

# ----------------------------------------------------------------------------------------------
# Vocabulary (ranked: earlier = more frequent)
# ----------------------------------------------------------------------------------------------

NOUNS = """account payment order invoice subscription password email card refund plan charge login data report
file app message team billing receipt settings profile user page link export dashboard notification integration
trial upgrade discount delivery shipment package address phone code verification device browser download upload
attachment document template workspace project calendar booking appointment license seat member role permission
admin domain certificate backup storage quota limit balance credit transaction statement bank transfer payout fee
tax currency price quote contract renewal cancellation deadline schedule webhook token key session cache server
connection timeout outage release version feature screen button form field column filter search list folder image
photo video chat widget label tracking warehouse stock inventory product item size color return exchange warranty
replacement battery charger cable keyboard printer router firmware driver camera speaker headset coupon voucher
gift wallet checkout cart basket promotion newsletter unsubscribe spam inbox signature username organisation
company client invoice_number purchase_order budget expense receipt_scan approval workflow automation rule trigger
tag category priority status comment reply thread draft mention assignment queue shift timesheet payroll employee
contractor vendor supplier catalogue sku barcode pallet courier parcel customs duty refund_request chargeback
dispute fraud alert lockout reset recovery mfa authenticator sso directory group audit log history timeline
activity summary analytics metric chart graph widget_layout import_job migration mapping spreadsheet csv pdf
printout scan fax voicemail extension dialer sms otp pin passcode locale language timezone region""".split()

VERBS = """update cancel reset change access download upload export import delete remove add connect sync
open find see use pay refund renew upgrade downgrade verify confirm activate deactivate restore recover transfer
move merge share print send receive install reinstall configure enable disable edit save submit approve reject
track return exchange replace unlock migrate invite assign rename archive schedule book reschedule""".split()

PAST = {"pay": "paid", "find": "found", "see": "seen", "send": "sent", "set": "set", "use": "used", "get": "got",
        "open": "opened", "book": "booked", "cancel": "cancelled", "submit": "submitted", "reset": "reset"}

ADJECTIVES = """blank slow broken wrong missing duplicate empty old new incorrect frozen stuck grey expired
invalid locked corrupted outdated unexpected different huge tiny partial delayed""".split()

FEATURES = """billing page|checkout page|login page|mobile app|desktop app|admin panel|reporting dashboard|API|
settings page|invoice PDF|export tool|import wizard|calendar view|search bar|customer portal|order history|
team settings|user management page|payment form|shipping calculator|password reset form|notification centre|
integrations page|data export|browser extension|SSO login|two-factor prompt|onboarding flow|upgrade screen|
analytics tab|contact form|booking widget|invoice editor|time tracker|file browser|Android app|iPhone app|
web app|sync service|email digest|public API|webhook settings|audit log|reports page""".replace("\n", "").split("|")

PLANS = ["Pro", "Business", "Starter", "Team", "Enterprise", "Basic", "Premium", "Plus", "Free", "Growth"]

INTEGRATIONS = """Slack|Shopify|Salesforce|HubSpot|Zapier|QuickBooks|Xero|Stripe|PayPal|Google Calendar|Outlook|
Mailchimp|Zendesk|Jira|Trello|Asana|Dropbox|Google Drive|OneDrive|Microsoft Teams|WooCommerce|Magento|
Intercom|Twilio|Okta|Notion|GitHub|Airtable|Calendly|DocuSign""".replace("\n", "").split("|")

ERRORS = """Payment declined|Something went wrong|Invalid token|500 Internal Server Error|Session expired|
Request timed out|Access denied|Card number is invalid|This link has expired|Unable to process your request|
Upload failed|File too large|Too many requests|Your account is locked|Verification code is incorrect|
Email address already in use|Network error|Sync failed|Permission denied|Page not found|Insufficient funds|
Invalid VAT number|Unsupported file type|Connection refused|Quota exceeded|Export failed|Address not recognised|
Subscription not found|Invalid date range|We could not verify your identity""".replace("\n", "").split("|")

BROWSERS = ["Chrome", "Safari", "Firefox", "Edge", "Brave", "Opera"]
DEVICES = ["Windows 11", "a MacBook", "an iPad", "Windows 10", "Ubuntu", "a Chromebook", "an Android tablet",
           "macOS Sonoma", "an iPhone 13", "a Pixel 7", "a Samsung Galaxy"]
CARRIERS = ["UPS", "FedEx", "DHL", "USPS", "Royal Mail", "DPD", "Canada Post", "PostNL", "GLS"]
TEAMS = ["billing", "engineering", "shipping", "security", "payments", "accounts", "product", "logistics"]
SECTIONS = ["Billing", "Account", "Security", "Notifications", "Integrations", "Team", "Preferences", "Privacy"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
REASONS = """our renewal is due this week|we have a client demo tomorrow|payroll runs on Friday|
our accountant needs the invoices today|the whole team is blocked|we are launching next Monday|
our customers cannot check out|the auditors arrive on Thursday|I am travelling next week|
the quarter closes at the end of the month""".replace("\n", "").split("|")
INDUSTRIES = """retail|logistics|healthcare|education|hospitality|construction|real estate|legal|nonprofit|
manufacturing|marketing|accounting|fitness|photography|consulting|travel|insurance|architecture|software|
catering""".replace("\n", "").split("|")

# Extra vocabulary for project, workspace and campaign names: a long, flat-ish tail of real words.
PROJECT_WORDS = """apollo atlas aurora beacon birch blue cedar comet coral cypress delta ember falcon fern
glacier granite harbor hawk horizon indigo ivy jasper juniper kestrel lagoon lantern lark laurel lotus maple
meadow meridian mesa nebula north oak onyx orbit orchid osprey pacific pebble phoenix pine pioneer polar prairie
quartz raven redwood ridge river rowan sage sapphire sequoia sierra slate solstice sparrow spruce summit sunrise
tahoe tidal timber topaz tundra valley vector velvet willow zenith acorn alder amber anchor arbor aspen badger
basil bayou bison bramble breeze canyon cascade chestnut cinder clover cobalt condor copper crescent dune eagle
echo elm estuary fable fjord flint fox garnet geyser gull heron hickory hollow iris jade kelp lilac linden lynx
magnolia mariner marsh mistral moss nectar nimbus oasis olive opal otter palm panther pecan pelican quail quill
reef robin saffron salmon sequin shale shore sorrel starling stone swift thistle thorn thyme tide torrent
trillium tulip umber vale verbena walnut wren yarrow yew zephyr""".split()

GREETINGS_IN = ["Hi,", "Hello,", "Hi there,", "Hello support team,", "Hi team,", "Good morning,", "Hey,",
                "Dear support,", "Hi {agent_first},", "Hello {agent_first},", "Good afternoon,"]
CLOSINGS_IN = ["Thanks,", "Thank you,", "Best regards,", "Regards,", "Many thanks,", "Cheers,", "Best,",
               "Kind regards,", "Thanks in advance,"]
GREETINGS_OUT = ["Hi {cust_first},", "Hello {cust_first},", "Hi {cust_first}, thanks for getting in touch.",
                 "Dear {cust_first},", "Hey {cust_first},"]
CLOSINGS_OUT = ["Best,", "Kind regards,", "Cheers,", "All the best,", "Thanks,", "Warm regards,"]

# Customer sentences. Slots: {n} {n2} noun, {v} verb, {vp} past participle, {a} adjective, {f} feature,
# {plan}, {intg} integration, {err} error, {code} error code, {order} order number, {num} small number,
# {money}, {date}, {browser}, {device}, {reason}, {proj} project name, {industry}, {colleague}, {company}.
CUSTOMER_SENTENCES = """I'm having trouble with my {n}.
Since the last update I can't {v} my {n}.
I was charged twice for my {plan} subscription this month.
My {n} stopped working after I {vp} the {n2}.
When I try to {v} the {n} in the {f}, I get an error that says "{err}".
I've been trying to {v} my {n} for {num} days now and nothing happens.
Is there a way to {v} the {n} without losing my {n2}?
Order {order} still hasn't arrived and the tracking page shows no updates.
Our team uses the {f} every day and today it is {a}.
The {f} keeps showing a {a} {n} instead of my {n2}.
I got an email saying my {n} was {vp}, but I never asked for that.
Please {v} my {n} as soon as possible, this is blocking our {n2}.
I already tried clearing the cache and logging out and back in.
This happens in {browser} on {device} as well as on my phone.
Can you tell me why my {n} was {vp}?
We need an invoice for {company} with our VAT number on it.
I would like a refund for the {plan} plan, we don't use it anymore.
The {intg} integration stopped syncing our {n} yesterday.
My colleague {colleague} can't {v} the {n} either.
Error code {code} shows up every time I {v} the {n}.
It worked fine last week.
I have attached a screenshot of the {f}.
This is really urgent for us because {reason}.
How do I {v} the {n} for the {proj} project?
We are a small {industry} business and rely on the {f} for our {n}.
The {n} on the invoice is {a}, it should be {money}.
I was charged {money} but my plan should only cost {money2}.
I can't log in because the verification code never arrives.
The password reset link says "{err}".
Could you please {v} my {n}?
Where can I find the {n} for last month?
We moved to the {plan} plan on {date} but the {n} still shows the old one.
Every time I {v} a {n}, the {f} freezes for a minute.
I need to {v} the {n} of a former employee.
The {n} export is {a} and half of the rows are missing.
Our {n} was {vp} without any warning.
The {intg} connection shows "{err}" since this morning.
I'm not sure if this is a bug or if I'm doing something wrong.
Is it possible to {v} several {n}s at once?
My card was declined even though there are enough funds.
I'd like to cancel my subscription and get a refund for the unused months.
I never received the confirmation email for order {order}.
The package for order {order} was delivered to the wrong address.
The item I received is {a}, I'd like to return it.
Can you send me a return label for order {order}?
We want to add {num} more seats to our {plan} plan.
The {f} doesn't load at all, it just shows a {a} screen.
Our accountant needs all the invoices since {month}.
Can I change the billing email on my account?
Two-factor authentication is locking me out of my account.
I accidentally deleted a {n} from the {proj} workspace, can it be restored?
The numbers in the {f} don't match the numbers in {intg}.
I'm getting "{err}" when I try to pay.
I tried {browser} and {browser2} and the problem is the same.
We were promised a discount when we renewed on {date}.
Please delete my account and all my data.
I can't find the option to {v} the {n} anymore.
We have {num} users and only some of them see the error.
Thanks for the quick reply yesterday, but the problem is back.
The {n} was working this morning and stopped around noon.
I need a copy of the receipt for my records.
The app crashes when I open the {f} on {device}.
Our {proj} campaign emails are going to spam.
The discount code {coupon} doesn't work at checkout.
We are being charged tax even though we are exempt.
The tracking number for order {order} isn't recognised by {carrier}.
The {n} count on the {f} is off by {num} since we imported our data from {intg}.
Our bookkeeper says the receipts are missing the company address.
I think someone else has access to my account, I see logins from a city I have never been to.
The mobile notifications arrive hours late, sometimes the next morning.
Our shop has been closed for renovation, can we pause the subscription until {month}?
The search on the {f} doesn't find customers by their phone number.
When two people edit the same {n} at the same time, one of the changes gets lost.
The confirmation page says my {n} went through, but my bank shows nothing.
I moved house and need to change the delivery address for all future orders.
Some of our staff are on older laptops and the {f} is extremely sluggish for them.
The PDF looks fine on screen but prints with the totals cut off.
Could you explain the difference between the {plan} and {plan2} plans?
The currency on our invoices switched from euros to dollars without us changing anything.
My manager wants a yearly invoice instead of a monthly one.
The calendar sync shows every appointment twice.
I keep getting logged out after a few minutes, even with "remember me" ticked.
The barcode scanner doesn't recognise the labels printed from the {f}.
We are migrating from {intg} and need help importing about {num} thousand records.
Our auditors asked for a log of who changed the bank details and when.
The dark mode makes the tables unreadable, the text is grey on grey.
The trial ended earlier than the fourteen days we were told.
I ordered the large size but received a medium, and the box was damaged.
The webhook retries flood our server with the same event again and again.
Our student discount disappeared when the plan renewed.
The accessibility checker flags the {f} because buttons have no labels.
The autocomplete suggests customers that were deleted months ago.
The warranty card says three years but your website says two.
I was told a technician would call me back on {date} but nobody did.
The tax rate for our province is wrong on the last three invoices.
Our API key was rotated and now the nightly sync fails with "{err}".
I can't attach files larger than a few megabytes to a {n}.
The onboarding emails keep coming although we finished the setup weeks ago.
Please merge my two accounts, I used my work and my personal address by mistake.
The {f} shows prices without VAT for our Swiss customers.
The font in the exported spreadsheet is tiny and the columns are too narrow.
My elderly father uses the app and finds the new menu confusing.
We need a data processing agreement signed before our legal team approves the renewal.
The gift voucher I bought for my sister says it has already been redeemed.
A charge from your company appeared on my statement and I don't recognise it.
The replacement charger overheats just like the first one did.
Our dispatch team prints {num} shipping labels a day and the printer queue keeps stalling.""".split("\n")

# Agent replies and notes.
AGENT_SENTENCES = """Thanks for reaching out about your {n}.
I'm sorry for the trouble with the {f}.
I've {vp} the {n} on your account, it should show up within {num} hours.
Could you send me a screenshot of the {f} and the exact error message?
I checked order {order} and it was shipped on {date} with {carrier}.
Our engineers are looking into an issue with the {intg} integration.
You can {v} the {n} from Settings > {section}.
I've issued a refund of {money} to the card ending in {last4}.
Please try again in a private window and let me know if the error persists.
I've escalated this to our {team} team and will update you as soon as I hear back.
Let me know if there is anything else I can help with.
Our records show your {n} was {vp} on {date}.
That error usually means the {n} has expired.
I've reset the {n} for you, please try logging in again.
The {plan} plan includes up to {num} seats, so you're all set.
We had a short outage on {date} that affected the {f}.
The fix for this will be part of the next release.
Could you confirm the email address on the account so I can look into it?
I've attached the invoice for {month} to this message.
I've cancelled the subscription and you won't be charged again.
A replacement has been sent and should arrive in {num} business days.
I can see the duplicate charge and have reversed it.
This is a known issue with {browser} and we're working on it.
You can find the export under Reports > {n}.
I've added a note to your account so the team knows about this.
Would it help if we set up a quick call to go through the {f} together?
Please clear the cache and reinstall the app on {device}.
I've sent a new verification code to your email.
Your {n} has been restored from the backup of {date}.
The discount will be applied to your next invoice.
I've merged the two accounts, please log in with your main email.
I've asked our developers to prioritise this, and I'll keep this ticket open until it's fixed.
As a workaround, you can download the report as CSV and open it in a spreadsheet.
The duplicate appointments come from two calendars being connected at once; disconnecting one fixes it.
I've extended your trial by seven days so you have time to finish the setup.
The warehouse confirmed the parcel was returned to sender because the house number was missing.
Our billing system applies the tax rate of the address on file, so updating it will fix future invoices.
You'll receive a prepaid return label by email within the hour.
I've switched the account to annual billing, and the difference has been credited.
For security reasons we can't change the owner's email without a confirmation from the current owner.
I've signed out all other sessions and recommend changing your password right away.
The data processing agreement is attached, signed on our side.
The voucher was redeemed on {date}; I've issued a new code and blocked the old one.
Rotating the API key invalidates old tokens, so the integration needs the new key in its settings.
I've reported the accessibility issue to our design team, thank you for flagging it.
Unfortunately the size you ordered is out of stock, would you like a refund or a store credit?
Our courier partner is seeing delays in your region this week.
Your account now has the student discount applied again, backdated to the renewal.
I've removed the deleted customers from the search suggestions; it can take an hour to update.""".split("\n")

NOTE_SENTENCES = """Customer is on the {plan} plan, {money} per month.
Looks like the same {intg} sync bug as last week.
Escalated to {team}, reference {code}.
Refund of {money} approved by {agent_first}.
Checked the logs, the {n} failed with "{err}" at {time}.
VIP customer, please reply today.
Waiting on engineering for the {f} fix.
Asked for a screenshot, no reply yet.
Possible fraud, do not refund until {team} confirms.""".split("\n")

SUBJECTS = """Can't {v} my {n}|Problem with the {f}|Refund for order {order}|Question about my {plan} plan|{err}|
Invoice request for {month}|Urgent: {n} not working|Charged twice|{n} missing|How do I {v} the {n}?|
Cancel my subscription|Order {order} not delivered|{intg} integration broken|Error {code} when I {v} the {n}|
Need help with {n}|Wrong {n} on invoice|Login problem|Account locked|Return request for order {order}|
Feature request: {v} {n}s in the {f}|{f} is {a}|Billing question|Update {n}|Password reset not working|
Discount code not working|Tax on invoice|Add seats to {plan} plan|Data export|Delete my account|
{n} {vp} by mistake""".replace("\n", "").split("|")

# Words that never appear in the templates or vocabularies: each is planted into a handful of threads.
PLANTED = ["marzipan", "quokka", "theremin", "tamarind", "gazpacho", "axolotl", "kumquat", "zeppelin", "origami",
           "calliope", "pangolin", "sassafras"]

COMPANY_SUFFIXES = ["Labs", "Studio", "Logistics", "Consulting", "Foods", "Health", "Design", "Group", "Partners",
                    "Supply", "Media", "Dental", "Bakery", "Realty", "Fitness", "Legal", "Systems", "Travel"]
FREEMAIL = [("gmail.com", 30), ("yahoo.com", 7), ("outlook.com", 8), ("hotmail.com", 6), ("icloud.com", 5),
            ("proton.me", 2), ("aol.com", 1), ("gmx.de", 1), ("live.com", 2), ("me.com", 1)]

try:  # Faker ships with the dev dependencies (factory-boy); fall back to short built-in lists.
    from faker.providers.lorem.en_US import Provider as _Lorem
    from faker.providers.person.en_US import Provider as _Person

    FIRST_NAMES = sorted(set(_Person.first_names_female) | set(_Person.first_names_male))
    LAST_NAMES = sorted(set(_Person.last_names))
    GENERAL_WORDS = [w for w in _Lorem.word_list if w.isalpha() and len(w) > 3]
except Exception:  # noqa: BLE001
    FIRST_NAMES = """alice bob carol david emma frank grace henry isla jack kate liam mia noah olivia peter quinn
    rachel sam tara uma victor wendy xavier yara zach megan lucas sofia ethan chloe""".split()
    LAST_NAMES = """smith johnson williams brown jones garcia miller davis rodriguez martinez hernandez lopez
    gonzalez wilson anderson thomas taylor moore jackson martin lee perez thompson white harris sanchez clark
    ramirez lewis robinson walker young allen king wright scott torres nguyen hill flores green adams""".split()
    GENERAL_WORDS = PROJECT_WORDS
FIRST_NAMES = [n.capitalize() for n in FIRST_NAMES]
LAST_NAMES = [n.capitalize() for n in LAST_NAMES]


# ----------------------------------------------------------------------------------------------
# Samplers
# ----------------------------------------------------------------------------------------------

class Zipf:
    """Draw from a ranked list with weight 1 / (rank + q) ** s, from a pre-sampled buffer."""

    def __init__(self, items, rng: random.Random, s: float = 1.0, q: float = 2.7, buffer: int = 65536):
        self.items = list(items)
        self.rng = rng
        self.cum = list(itertools.accumulate(1.0 / (r + q) ** s for r in range(1, len(self.items) + 1)))
        self.buffer = buffer
        self._it = iter(())

    def __call__(self):
        try:
            return next(self._it)
        except StopIteration:
            self._it = iter(self.rng.choices(self.items, cum_weights=self.cum, k=self.buffer))
            return next(self._it)

    def probability(self, item) -> float:
        i = self.items.index(item)
        return (self.cum[i] - (self.cum[i - 1] if i else 0.0)) / self.cum[-1]


class Uniform:
    def __init__(self, items, rng: random.Random, buffer: int = 65536):
        self.items, self.rng, self.buffer = list(items), rng, buffer
        self._it = iter(())

    def __call__(self):
        try:
            return next(self._it)
        except StopIteration:
            self._it = iter(self.rng.choices(self.items, k=self.buffer))
            return next(self._it)


def _parse(template: str):
    """'Hi {n}!' -> (('Hi ', 'n'), ('!', None)): literal/slot pairs for fast filling."""
    out = []
    for literal, slot, _spec, _conv in string.Formatter().parse(template):
        out.append((literal, slot))
    return tuple(out)


class TextGenerator:
    """Subjects, customer messages, agent replies and notes; one instance per process (own RNG)."""

    def __init__(self, seed: int, agents: list[tuple[str, str]]):
        rng = self.rng = random.Random(seed)
        nouns = [n.replace("_", " ") for n in NOUNS]
        self.noun = Zipf(nouns, rng, s=1.05, q=3.0)
        self.verb = Zipf(VERBS, rng, s=1.0, q=2.0)
        self.adj = Zipf(ADJECTIVES, rng, s=0.9, q=2.0)
        self.feature = Zipf(FEATURES, rng, s=0.9, q=3.0)
        self.plan = Zipf(PLANS, rng, s=0.8, q=1.0)
        self.intg = Zipf(INTEGRATIONS, rng, s=1.0, q=2.0)
        self.err = Zipf(ERRORS, rng, s=0.9, q=2.0)
        # Project names come from a flat-ish tail of ~1100 real words: the mid/rare part of the corpus.
        self.proj_word = Zipf(PROJECT_WORDS + GENERAL_WORDS, rng, s=0.85, q=10.0)
        self.first = Zipf(FIRST_NAMES, rng, s=0.6, q=20.0)
        self.last = Zipf(LAST_NAMES, rng, s=0.6, q=20.0)
        self.cust_sentence = Zipf([_parse(t) for t in CUSTOMER_SENTENCES], rng, s=0.6, q=10.0)
        self.agent_sentence = Zipf([_parse(t) for t in AGENT_SENTENCES], rng, s=0.6, q=10.0)
        self.note_sentence = Uniform([_parse(t) for t in NOTE_SENTENCES], rng)
        self.subject_t = Zipf([_parse(t) for t in SUBJECTS], rng, s=0.8, q=4.0)
        self.greet_in = Uniform([_parse(t) for t in GREETINGS_IN], rng)
        self.greet_out = Uniform([_parse(t) for t in GREETINGS_OUT], rng)
        self.close_in = Uniform(CLOSINGS_IN, rng)
        self.close_out = Uniform(CLOSINGS_OUT, rng)
        self.agents = agents  # (first name, full name)
        self.browser = Zipf(BROWSERS, rng, s=1.0, q=1.0)
        self.device = Uniform(DEVICES, rng)
        self.rand = rng.random
        self.randint = rng.randint
        self._slots = {
            "n": self.noun, "n2": self.noun, "v": self.verb, "vp": self._past, "a": self.adj, "f": self.feature,
            "plan": self.plan, "intg": self.intg, "err": self.err, "code": self._code, "order": self._order,
            "num": self._num, "money": self._money, "money2": self._money, "plan2": self.plan, "date": self._date,
            "browser": self.browser, "browser2": self.browser, "device": self.device, "reason": Uniform(REASONS, rng),
            "proj": self._project, "industry": Uniform(INDUSTRIES, rng), "colleague": self.first,
            "company": self.company_name, "carrier": Uniform(CARRIERS, rng), "section": Uniform(SECTIONS, rng),
            "team": Uniform(TEAMS, rng), "month": Uniform(MONTHS, rng), "last4": lambda: f"{self.randint(0, 9999):04d}",
            "coupon": lambda: f"{self.proj_word().upper()}{self.randint(5, 50)}",
            "time": lambda: f"{self.randint(0, 23):02d}:{self.randint(0, 59):02d} UTC",
        }
        self.ctx = {}

    # slot fillers
    def _past(self):
        v = self.verb()
        if v in PAST:
            return PAST[v]
        return v + "d" if v.endswith("e") else v + "ed"

    def _code(self):
        return f"E{self.randint(100, 4999)}"

    def _order(self):
        return f"#{self.randint(100000, 9999999)}"

    def _num(self):
        return str(self.randint(2, 30))

    def _money(self):
        return f"${self.randint(9, 2400)}.{self.randint(0, 99):02d}"

    def _date(self):
        return f"{WEEKDAYS[self.randint(0, 6)]} {self.randint(1, 28)} {MONTHS[self.randint(0, 11)]}"

    def _project(self):
        return self.proj_word().capitalize()

    def company_name(self):
        return f"{self.proj_word().capitalize()} {COMPANY_SUFFIXES[self.randint(0, len(COMPANY_SUFFIXES) - 1)]}"

    def fill(self, parsed) -> str:
        out = []
        slots, ctx = self._slots, self.ctx
        for literal, slot in parsed:
            out.append(literal)
            if slot is not None:
                value = ctx.get(slot)
                out.append(value if value is not None else slots[slot]())
        return "".join(out)

    # pieces of a ticket
    def subject(self) -> str:
        s = self.fill(self.subject_t())
        return s[0].upper() + s[1:]

    def _body(self, sentence, target: int) -> str:
        """Paragraphs of 1-4 sentences until about `target` characters."""
        paragraphs, size = [], 0
        while size < target:
            para = " ".join(self.fill(sentence()) for _ in range(self.randint(1, 4)))
            paragraphs.append(para)
            size += len(para) + 2
        return "\n\n".join(paragraphs)

    def length(self) -> int:
        """Message length (without greeting/signature): mostly 250-900, tail to ~1400 characters."""
        return int(min(1400, 220 + self.rng.lognormvariate(5.9, 0.55)))

    def customer_message(self, cust_first: str, cust_full: str, agent_first: str, extra: str = "") -> str:
        self.ctx = {"agent_first": agent_first}
        greet = self.fill(self.greet_in())
        body = self._body(self.cust_sentence, self.length())
        if extra:
            body += "\n\n" + extra
        sign = cust_first if self.rand() < 0.5 else cust_full
        self.ctx = {}
        return f"{greet}\n\n{body}\n\n{self.close_in()}\n{sign}"

    def agent_message(self, cust_first: str, agent_full: str, brand: str, extra: str = "") -> str:
        self.ctx = {"cust_first": cust_first}
        greet = self.fill(self.greet_out())
        body = self._body(self.agent_sentence, int(self.length() * 0.8))
        if extra:
            body += "\n\n" + extra
        self.ctx = {}
        return f"{greet}\n\n{body}\n\n{self.close_out()}\n{agent_full}\n{brand} Support"

    def note(self, agent_first: str, extra: str = "") -> str:
        self.ctx = {"agent_first": agent_first}
        text = " ".join(self.fill(self.note_sentence()) for _ in range(self.randint(1, 3)))
        self.ctx = {}
        return text + ("\n\n" + extra if extra else "")


def planted_sentence(word: str, rng: random.Random) -> str:
    return rng.choice([
        f"By the way, the {word} workspace has the same problem.",
        f"We named the project {word.capitalize()}, in case that helps you find it.",
        f"The affected item is the {word} bundle from your spring catalogue.",
        f"Our {word} integration was set up by a contractor last year.",
    ])


def quote(text: str, who: str, when: str, limit: int = 700) -> str:
    """The quoted previous message of an email reply (not indexed: Echo indexes stripped_text)."""
    lines = text[:limit].split("\n")
    return f"On {when}, {who} wrote:\n" + "\n".join("> " + line for line in lines)


def html(text: str) -> str:
    """A small HTML rendering of a plain message (text has no < > & by construction)."""
    return "<div dir=\"ltr\"><p>" + text.replace("\n\n", "</p><p>").replace("\n", "<br>") + "</p></div>"


# ----------------------------------------------------------------------------------------------
# People
# ----------------------------------------------------------------------------------------------

def make_customers(n: int, rng: random.Random):
    """n unique (email, display name, first name) with realistic address patterns."""
    first = Zipf(FIRST_NAMES, rng, s=0.6, q=20.0)
    last = Zipf(LAST_NAMES, rng, s=0.6, q=20.0)
    free_domains = [d for d, _w in FREEMAIL]
    free_cum = list(itertools.accumulate(w for _d, w in FREEMAIL))
    words = PROJECT_WORDS + GENERAL_WORDS
    company_domains = []
    for _ in range(max(50, n // 12)):
        w = rng.choice(words) + rng.choice(["", "", "-" + rng.choice(COMPANY_SUFFIXES).lower(),
                                            rng.choice(COMPANY_SUFFIXES).lower(), "hq", "co"])
        company_domains.append(w + rng.choice([".com", ".com", ".com", ".io", ".co.uk", ".de", ".net", ".org", ".ca"]))
    seen, out = set(), []
    while len(out) < n:
        given, family = first(), last()
        fl, ll = given.lower(), family.lower().replace("'", "").replace(" ", "")
        if rng.random() < 0.62:
            domain = free_domains[bisect(free_cum, rng.random() * free_cum[-1])]
        else:
            domain = rng.choice(company_domains)
        pattern = rng.random()
        if pattern < 0.45:
            local = f"{fl}.{ll}"
        elif pattern < 0.6:
            local = f"{fl}{ll}"
        elif pattern < 0.72:
            local = f"{fl[0]}{ll}"
        elif pattern < 0.82:
            local = f"{fl}.{ll[0]}"
        elif pattern < 0.9:
            local = f"{fl}_{ll}{rng.randint(1, 99)}"
        else:
            local = f"{fl}{rng.randint(70, 2005)}"
        email = f"{local}@{domain}"
        while email in seen:
            email = f"{local}{rng.randint(1, 999)}@{domain}"
        seen.add(email)
        out.append((email, f"{given} {family}", given))
    return out


AGENT_NAMES = [("Demo", "Demo Agent", "demo@echo.local"), ("Priya", "Priya Raman", "priya@echo.local"),
               ("Marcus", "Marcus Cole", "marcus@echo.local"), ("Lena", "Lena Hoffmann", "lena@echo.local"),
               ("Tom", "Tom Okafor", "tom@echo.local"), ("Sara", "Sara Lindqvist", "sara@echo.local"),
               ("Diego", "Diego Alvarez", "diego@echo.local"), ("Aiko", "Aiko Tanaka", "aiko@echo.local"),
               ("Noor", "Noor Haddad", "noor@echo.local"), ("Ben", "Ben Fischer", "ben@echo.local"),
               ("Chloe", "Chloe Martin", "chloe@echo.local"), ("Ravi", "Ravi Kumar", "ravi@echo.local")]


if __name__ == "__main__":
    import sys
    import time

    gen = TextGenerator(int(sys.argv[1]) if len(sys.argv) > 1 else 1, [(a[0], a[1]) for a in AGENT_NAMES])
    print("Subject:", gen.subject(), "\n")
    print(gen.customer_message("Megan", "Megan Hall", "Priya"), "\n\n----\n")
    print(gen.agent_message("Megan", "Priya Raman", "Acme"), "\n\n----\n")
    print(gen.note("Priya"))
    t0 = time.perf_counter()
    n, chars = 20000, 0
    for _ in range(n):
        chars += len(gen.customer_message("Megan", "Megan Hall", "Priya"))
    dt = time.perf_counter() - t0
    print(f"\n{n} messages, mean {chars / n:.0f} chars, {dt / n * 1e6:.0f} us each", file=sys.stderr)
