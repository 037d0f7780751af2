"""Phrase pools the benchmark corpus is assembled from: load, not training data.

Sentences carry slots ({service}, {place}, {staff}, {day}, {weeks}, {ref}) that
bench.corpus fills in; each pool has a few dozen entries so bodies vary realistically.
"""

from __future__ import annotations

FIRST_NAMES = (
    "Jane", "Amir", "Siobhan", "Tomasz", "Grace", "Oluwaseun", "Mark", "Priya", "Eilidh",
    "Dafydd", "Chen", "Fatima", "Gareth", "Zofia", "Aoife", "Kwame", "Helen", "Rahul",
    "Bethan", "Luca", "Margaret", "Yusuf", "Chloé", "Søren", "Agnieszka", "Noor", "Peter",
    "Hannah", "Ibrahim", "Catriona", "David", "Leila", "Rhys", "Małgorzata", "José", "Anne",
)  # fmt: skip
LAST_NAMES = (
    "Citizen", "Okafor", "Kowalski", "Murphy", "Patel", "Jones", "Williams", "MacLeod",
    "Nguyen", "Hassan", "Evans", "Brown", "Nowak", "O'Brien", "Mensah", "Smith", "Khan",
    "Davies", "Rossi", "Thompson", "Ali", "Campbell", "Wright", "Lewis", "Zhang", "Hughes",
    "Fernández", "Müller", "Byrne", "Ahmed", "Taylor", "Roberts", "Walker", "Green",
)  # fmt: skip
DOMAINS = (
    "example.net", "mail.example.com", "example.co.uk", "inbox.example.org", "post.example.net",
    "example.ie", "users.example.com", "home.example.net",
)  # fmt: skip
SERVICES = (
    "bin collection", "outpatient clinic", "housing repairs team", "council tax office",
    "parking permit service", "GP surgery", "A&E department", "school admissions team",
    "planning department", "library service", "leisure centre", "pharmacy", "maternity ward",
    "blue badge service", "benefits helpline", "pest control service", "street lighting team",
    "physiotherapy clinic", "adult education service", "registrar's office", "recycling centre",
    "community transport service", "dental practice", "building control team", "customer portal",
)  # fmt: skip
PLACES = (
    "the main reception", "Ward 7", "the High Street office", "the Riverside depot",
    "the car park on Station Road", "the outpatients waiting area", "the civic centre",
    "the clinic on Elm Grove", "your telephone line", "your website", "the Northgate branch",
    "the front desk", "the pharmacy counter", "the east entrance", "the one-stop shop",
)  # fmt: skip
STAFF = (
    "the receptionist", "a manager", "the duty officer", "the nurse in charge", "a call handler",
    "the driver", "the consultant", "your contractor", "a member of your team", "the caseworker",
    "the supervisor", "an inspector", "the pharmacist", "the security guard", "the team leader",
)  # fmt: skip
DAYS = (
    "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "last week",
    "yesterday", "this morning", "on the 3rd", "on the 14th", "on the 21st", "two weeks ago",
)  # fmt: skip

COMPLAINT_SUBJECTS = (
    "Complaint about the {service}", "Formal complaint", "Very poor service from the {service}",
    "Complaint - missed appointment", "Complaint regarding {staff}", "I wish to complain",
    "Unacceptable treatment at {place}", "Still waiting - {service}", "Complaint: {service}",
    "Rude staff at {place}", "Repeated failures by the {service}", "Not good enough",
    "Complaint about delays", "Formal complaint (second attempt)", "Problem with the {service}",
    "Disgraceful handling of my case", "Missed collection again", "Complaint ref {ref}",
)  # fmt: skip
COMPLAINT_OPENINGS = (
    "I am writing to make a formal complaint about the {service}.",
    "I want to complain about the way I was treated at {place} {day}.",
    "This is the third time I have had to contact you about the {service}.",
    "I am very unhappy with the service I received from the {service}.",
    "Please treat this email as a formal complaint.",
    "I have been a resident for twenty years and have never had to write like this before.",
    "I tried to raise this by telephone but was cut off twice, so I am putting it in writing.",
    "I am complaining on behalf of my elderly mother, who finds it hard to write.",
    "Something went badly wrong with the {service} {day} and I want an explanation.",
    "I was told to email this address if I wanted to complain, so here it is.",
    "I wish to lodge a complaint about {staff} at {place}.",
    "Following my visit to {place} {day}, I feel I have no choice but to complain.",
)  # fmt: skip
COMPLAINT_INCIDENTS = (
    "I arrived at {place} on time and waited for over three hours without anyone telling me why.",
    "{staff} was dismissive and told me to come back another day, which I cannot easily do.",
    "The appointment was cancelled without notice and nobody rang to rebook it.",
    "I was given three different answers by three different people about the same question.",
    "The {service} promised a call back within 48 hours; that was {weeks} weeks ago.",
    "When I asked to speak to a manager I was told there was nobody available all day.",
    "My bins have not been collected for {weeks} weeks despite several reports online.",
    "The letter I received had the wrong name, the wrong address and the wrong date.",
    "I was charged twice for the same thing and the refund I was promised never arrived.",
    "{staff} spoke to me in front of other people about private matters, which was humiliating.",
    "The online form crashed four times and lost everything I had typed each time.",
    "Nobody checked whether I needed step-free access, and the lift was out of order.",
    "The repair was marked as completed on your system but nobody ever came to the house.",
    "I was kept on hold for fifty minutes and then the line simply went dead.",
    "The information on your website about the {service} is out of date and misleading.",
    "{staff} refused to give me their name when I asked for it politely.",
    "My complaint reference {ref} has had no update since it was opened.",
    "There was water coming through the ceiling and the emergency number rang out.",
    "The waiting area at {place} was filthy and there was nowhere for my children to sit.",
    "I explained my situation four times and each time I had to start again from scratch.",
    "The decision letter gave no reason at all and no information about how to appeal.",
    "I was told my paperwork had been lost and I would need to send everything again.",
    "The interpreter that was booked never turned up, so the appointment was pointless.",
    "The {service} sent a van, it parked outside for ten minutes, and then it drove off.",
    "I was promised a written answer by {day} and I am still waiting for it.",
    "The person on the phone laughed when I explained how long I had been waiting.",
)  # fmt: skip
COMPLAINT_IMPACTS = (
    "I had to take an unpaid day off work because of this.",
    "My mother was left distressed and confused for the rest of the day.",
    "This has caused me a great deal of stress and I have not been sleeping.",
    "I now have to pay for a private service I should not need.",
    "My children have been unable to use the garden because of the smell.",
    "I missed a hospital appointment as a direct result of the confusion.",
    "I have spent hours on the phone and money on travel for nothing.",
    "The damp has spread to the bedroom and my son's asthma has got worse.",
    "I feel that I have been treated with contempt rather than as a member of the public.",
    "Frankly, I have lost all confidence in the {service}.",
    "It has left me out of pocket by more than two hundred pounds.",
    "My neighbours are affected too and several of them have given up complaining.",
    "I am disabled and this has made an already difficult situation much harder.",
    "The delay means I may now lose my place on the course.",
)  # fmt: skip
COMPLAINT_REQUESTS = (
    "I would like a full written explanation of what went wrong.",
    "Please confirm what you will do to put this right, and by when.",
    "I expect an apology and a refund of the charges.",
    "I want to know who is responsible and what will be done so this does not happen again.",
    "Please arrange for someone senior to call me; my number is on your records.",
    "If I do not hear from you within ten working days I will contact the ombudsman.",
    "I would like my complaint escalated to the next stage of your procedure.",
    "Please reinstate my appointment as a matter of urgency.",
    "Kindly send me a copy of the notes held about my visit.",
    "I would like compensation for the time and money this has cost me.",
    "Please make sure my case is looked at by someone who has not been involved so far.",
)  # fmt: skip
FEEDBACK_SUBJECTS = (
    "Thank you", "Compliment for {staff}", "Feedback on the {service}", "A suggestion",
    "Well done to the team at {place}", "Some feedback", "Thanks for your help",
    "Suggestion for the {service}", "Positive feedback", "Just wanted to say thanks",
)  # fmt: skip
FEEDBACK_SENTENCES = (
    "I wanted to say a big thank you to {staff} at {place}, who went out of their way to help.",
    "The {service} was quick, friendly and efficient {day}; please pass on my thanks.",
    "A small suggestion: it would help if the opening hours were on the front page.",
    "Well done to everyone at {place}, it is obvious how hard they are working.",
    "Could you consider adding more seating in the waiting area? It gets very busy.",
    "Thanks to the {service} for sorting out my problem so quickly.",
    "It would be useful to get a text message reminder the day before appointments.",
    "The new online booking system is a real improvement, thank you.",
    "I suggest putting a sign at the entrance explaining where to go for the {service}.",
    "{staff} was patient and kind with my father, who has dementia. We are very grateful.",
    "Please thank the crew who came {day}; they were polite and tidy.",
    "Your staff were excellent, although the car park signage could be clearer.",
    "I thought you would like to hear when things go right, not just when they go wrong.",
    "The letter explaining the changes was clear and easy to follow. Thank you.",
    "A compliment for the call handler who stayed on the line until help arrived.",
    "Perhaps the leaflets could also be available in Polish and Urdu.",
    "The {service} has improved a lot over the last year, well done.",
    "Just a suggestion: a drop-off point near {place} would save a lot of journeys.",
)  # fmt: skip
OUT_OF_SCOPE = {
    "data_protection": (
        ("Subject access request", "Data protection request", "GDPR request - my data"),
        (
            "Under data protection law I am making a subject access request for all personal "
            "data you hold about me.",
            "Please erase my personal data from your mailing lists and confirm when done.",
            "I believe my personal data was shared with a third party without my consent.",
            "Please send me copies of all records, emails and notes that mention my name.",
            "I would like to know how long you keep my data and who it is shared with.",
            "A letter containing my personal data was sent to the wrong address {day}.",
        ),
    ),
    "safeguarding": (
        ("Concern about a neighbour", "Worried about a child", "Urgent concern"),
        (
            "I am worried that the child next door is being neglected; he is often left alone.",
            "An elderly man on our street seems unsafe at home and has bruises on his arms.",
            "I think a vulnerable adult I know is being financially abused by a relative.",
            "A teenager told me she does not feel safe at home and I did not know who to tell.",
            "I heard shouting and someone being hit next door again {day}.",
        ),
    ),
    "hr": (
        ("Job application", "Grievance", "Payroll query", "Interview feedback"),
        (
            "I applied for the administrator post and would like feedback on my interview.",
            "I wish to raise a grievance about the way my manager has treated me.",
            "My payroll has been wrong for two months and nobody in HR replies.",
            "Could you tell me the closing date for the job application I saw advertised?",
            "I am an employee and want to know the procedure for a flexible working request.",
        ),
    ),
    "social_care": (
        ("Care package", "Assessment request", "Social worker"),
        (
            "My father needs a care assessment; his needs have changed since his fall.",
            "We have not seen our social worker for three months and the care plan is overdue.",
            "The care package agreed in March has still not started.",
            "Could someone review my mother's care plan? The carers only stay ten minutes.",
            "I would like to request an assessment for respite care.",
        ),
    ),
}
FOLLOWUP_SENTENCES = (
    "I am writing again because I have not had any reply to my email below.",
    "Further to my message, I should add that the problem happened again {day}.",
    "I have attached a photo of the damage I mentioned.",
    "Could you please give me an update on where my complaint has got to?",
    "I forgot to mention that {staff} also told me the form was not needed.",
    "Since I wrote, a letter has arrived that contradicts what I was told on the phone.",
    "Thank you for your acknowledgement. I look forward to a full reply.",
    "This is now urgent: the {service} has written to me threatening further action.",
    "Please could you confirm you received my previous email?",
    "My neighbour has had exactly the same experience and asked me to mention it.",
    "I would also like the cost of the taxi I had to take reimbursed.",
    "Just to add: my telephone number has changed, please use this email instead.",
)  # fmt: skip
OUT_OF_OFFICE = (
    (
        "Automatic reply: {subject}",
        "Thank you for your email. I am out of the office until {day} with limited access to "
        "email. For urgent matters please contact the main office.",
    ),
    ("Out of Office: {subject}", "I am currently on annual leave and will reply on my return."),
    (
        "Abwesenheitsnotiz: {subject}",
        "Vielen Dank für Ihre Nachricht. Ich bin bis {day} nicht im Büro.",
    ),
    (
        "Réponse automatique : {subject}",
        "Je suis absent du bureau et je répondrai à votre message dès mon retour.",
    ),
    ("Auto: {subject}", "This mailbox is not monitored. Your message has not been read."),
    (
        "Automatic reply: {subject}",
        "I no longer work for this organisation. Please redirect your email to the team inbox.",
    ),
)
BOUNCE_TEXTS = (
    "This is the mail system at host mx.{domain}.\n\nI'm sorry to have to inform you that your "
    "message could not be delivered to one or more recipients.\n\n<{rcpt}>: host "
    "mx.{domain} said: 550 5.1.1 User unknown",
    "Delivery to the following recipient failed permanently:\n\n    {rcpt}\n\nTechnical details "
    "of permanent failure: the recipient's mailbox is full.",
    "Your message to {rcpt} couldn't be delivered. The address wasn't found at the destination "
    "domain. It might be misspelled or it might not exist.",
)
SIGNATURES = (
    "Yours faithfully,\n{name}",
    "Regards,\n{name}",
    "Kind regards\n{name}\nSent from my phone",
    "Thanks,\n{name}",
    "{name}\n{street} Road\nTel: 07700 900{num}",
    "Many thanks,\n{name}\n\n--\nThis email and any attachments are confidential and intended "
    "solely for the addressee. If you have received it in error please tell the sender.",
)  # fmt: skip
MAILERS = (
    "Microsoft Outlook 16.0", "Apple Mail (2.3774)", "Mozilla Thunderbird 128.4",
    "Roundcube Webmail/1.6.9", "iPhone Mail (21G93)", "Gmail",
)  # fmt: skip
STREETS = ("Elm", "Station", "Mill", "Church", "Victoria", "Park", "Queen's", "Chapel")
