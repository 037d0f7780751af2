"""Mail as it really arrives: the HTML part Outlook (Word's HTML) writes, and a disclaimer.

A complaint sent from Outlook is multipart/alternative: a text/plain part and a
text/html part of 3-15 KB, most of it Word's <head> (namespaces, font faces, Mso styles,
conditional comments), the paragraphs as <p class=MsoNormal> with <o:p> and spans, a
signature block in a table, and the organisation's legal disclaimer. Ingest figures
taken on plain-text mail alone flatter the daemon: parsing such a part costs more.
"""

from __future__ import annotations

import html
import random

DISCLAIMERS = (
    "This email and any files transmitted with it are confidential and intended solely for "
    "the use of the individual or entity to whom they are addressed. If you have received "
    "this email in error please notify the system manager. This message contains "
    "confidential information and is intended only for the individual named. If you are not "
    "the named addressee you should not disseminate, distribute or copy this e-mail. Please "
    "notify the sender immediately by e-mail if you have received this e-mail by mistake and "
    "delete this e-mail from your system.",
    "Disclaimer: The information contained in this communication from the sender is "
    "confidential. It is intended solely for use by the recipient and others authorized to "
    "receive it. If you are not the recipient, you are hereby notified that any disclosure, "
    "copying, distribution or taking action in relation of the contents of this information "
    "is strictly prohibited and may be unlawful. This email has been scanned for viruses and "
    "malware, and may have been automatically archived.",
    "Please consider the environment before printing this email. Any views or opinions "
    "presented in this email are solely those of the author and do not necessarily "
    "represent those of the company. Employees are expressly required not to make "
    "defamatory statements and not to infringe or authorise any infringement of copyright "
    "or any other legal right by email communications.",
)

_FONTS = ("Calibri", "Aptos", "Arial", "Segoe UI", "Verdana")

_HEAD = """<html xmlns:v="urn:schemas-microsoft-com:vml" \
xmlns:o="urn:schemas-microsoft-com:office:office" \
xmlns:w="urn:schemas-microsoft-com:office:word" \
xmlns:m="http://schemas.microsoft.com/office/2004/12/omml" \
xmlns="http://www.w3.org/TR/REC-html40"><head>
<meta http-equiv="Content-Type" content="text/html; charset=utf-8">
<meta name="Generator" content="Microsoft Word 15 (filtered medium)">
<!--[if !mso]><style>v\\:* {{behavior:url(#default#VML);}}
o\\:* {{behavior:url(#default#VML);}}
w\\:* {{behavior:url(#default#VML);}}
.shape {{behavior:url(#default#VML);}}
</style><![endif]--><style><!--
/* Font Definitions */
@font-face
\t{{font-family:"Cambria Math";
\tpanose-1:2 4 5 3 5 4 6 3 2 4;}}
@font-face
\t{{font-family:{font};
\tpanose-1:2 15 5 2 2 2 4 3 2 4;}}
/* Style Definitions */
p.MsoNormal, li.MsoNormal, div.MsoNormal
\t{{margin:0cm;
\tfont-size:11.0pt;
\tfont-family:"{font}",sans-serif;
\tmso-ligatures:standardcontextual;
\tmso-fareast-language:EN-US;}}
a:link, span.MsoHyperlink
\t{{mso-style-priority:99;
\tcolor:#0563C1;
\ttext-decoration:underline;}}
span.EmailStyle17
\t{{mso-style-type:personal-compose;
\tfont-family:"{font}",sans-serif;
\tcolor:windowtext;}}
.MsoChpDefault
\t{{mso-style-type:export-only;
\tfont-size:10.0pt;
\tmso-ligatures:none;
\tmso-fareast-language:EN-US;}}
@page WordSection1
\t{{size:612.0pt 792.0pt;
\tmargin:72.0pt 72.0pt 72.0pt 72.0pt;}}
div.WordSection1
\t{{page:WordSection1;}}
--></style><!--[if gte mso 9]><xml>
<o:shapedefaults v:ext="edit" spidmax="1026" />
</xml><![endif]--><!--[if gte mso 9]><xml>
<o:shapelayout v:ext="edit">
<o:idmap v:ext="edit" data="1" />
</o:shapelayout></xml><![endif]-->
</head>
<body lang="EN-GB" link="#0563C1" vlink="#954F72" style="word-wrap:break-word">
<div class="WordSection1">
"""


def _paragraph(text: str, font: str) -> str:
    return (
        '<p class="MsoNormal"><span style="font-size:11.0pt;font-family:&quot;'
        f'{font}&quot;,sans-serif;mso-fareast-language:EN-GB">{html.escape(text)}'
        "<o:p></o:p></span></p>\n"
        '<p class="MsoNormal"><span style="font-size:11.0pt"><o:p>&nbsp;</o:p></span></p>\n'
    )


def outlook_html(body: str, disclaimer: str, rng: random.Random) -> str:
    """The text/html part Outlook would send for `body` (paragraphs, then a signature)."""
    font = rng.choice(_FONTS)
    parts = [_HEAD.format(font=font)]
    for block in body.split("\n\n"):
        parts.append(_paragraph(" ".join(block.split("\n")), font))
    parts.append(
        '<table class="MsoNormalTable" border="0" cellspacing="0" cellpadding="0" '
        'style="border-collapse:collapse"><tr><td width="400" valign="top" '
        'style="width:300.0pt;padding:0cm 5.4pt 0cm 5.4pt">'
        f'<p class="MsoNormal"><b><span style="font-size:9.0pt;color:#1F3864">{rng.randint(1, 9)}'
        '</span></b><span style="font-size:9.0pt;color:#1F3864"> Sent from Outlook'
        "<o:p></o:p></span></p></td></tr></table>\n"
    )
    parts.append(
        '<p class="MsoNormal"><i><span style="font-size:7.5pt;color:gray">'
        f"{html.escape(disclaimer)}<o:p></o:p></span></i></p>\n</div>\n</body>\n</html>\n"
    )
    return "".join(parts)
