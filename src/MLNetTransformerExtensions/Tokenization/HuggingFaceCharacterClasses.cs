using System.Globalization;
using System.Text;

namespace MLNetTransformerExtensions.Tokenization;

/// <summary>
/// The character classes HuggingFace's Python tokenizers use (tokenization_bert.py's <c>_is_whitespace</c>,
/// <c>_is_control</c>, <c>_is_punctuation</c>, <c>_is_chinese_char</c>, and Python's <c>str.isspace</c>), on code points.
/// </summary>
internal static class HuggingFaceCharacterClasses
{
    /// <summary>BERT's whitespace: space, tab, newline, carriage return, or any space separator (Zs).</summary>
    public static bool IsBertWhitespace(Rune rune) =>
        rune.Value is ' ' or '\t' or '\n' or '\r' || Rune.GetUnicodeCategory(rune) == UnicodeCategory.SpaceSeparator;

    /// <summary>BERT's control characters: every "C*" category (Cc, Cf, Cs, Co, Cn) except tab, newline and carriage return.</summary>
    public static bool IsBertControl(Rune rune)
    {
        if (rune.Value is '\t' or '\n' or '\r')
        {
            return false;
        }

        return Rune.GetUnicodeCategory(rune) is UnicodeCategory.Control or UnicodeCategory.Format
            or UnicodeCategory.Surrogate or UnicodeCategory.PrivateUse or UnicodeCategory.OtherNotAssigned;
    }

    /// <summary>BERT's punctuation: all non-alphanumeric ASCII symbols (so <c>$ + &lt; = &gt; ^ ` | ~</c> too) and every "P*" category.</summary>
    public static bool IsBertPunctuation(Rune rune)
    {
        var cp = rune.Value;
        if (cp is (>= 33 and <= 47) or (>= 58 and <= 64) or (>= 91 and <= 96) or (>= 123 and <= 126))
        {
            return true;
        }

        return Rune.GetUnicodeCategory(rune) is UnicodeCategory.ConnectorPunctuation or UnicodeCategory.DashPunctuation
            or UnicodeCategory.OpenPunctuation or UnicodeCategory.ClosePunctuation or UnicodeCategory.InitialQuotePunctuation
            or UnicodeCategory.FinalQuotePunctuation or UnicodeCategory.OtherPunctuation;
    }

    /// <summary>The CJK Unified Ideograph blocks BERT splits one character at a time (Hangul, kana are not among them).</summary>
    public static bool IsCjkIdeograph(int cp) =>
        cp is (>= 0x4E00 and <= 0x9FFF) or (>= 0x3400 and <= 0x4DBF) or (>= 0x20000 and <= 0x2A6DF)
            or (>= 0x2A700 and <= 0x2B73F) or (>= 0x2B740 and <= 0x2B81F) or (>= 0x2B820 and <= 0x2CEAF)
            or (>= 0xF900 and <= 0xFAFF) or (>= 0x2F800 and <= 0x2FA1F);

    /// <summary>Python's <c>str.isspace</c>, which <c>str.split()</c> and <c>str.strip()</c> use: .NET's White_Space plus U+001C..U+001F.</summary>
    public static bool IsPythonWhitespace(char c) => char.IsWhiteSpace(c) || c is >= '\u001C' and <= '\u001F';

    /// <inheritdoc cref="IsPythonWhitespace(char)"/>
    public static bool IsPythonWhitespace(Rune rune) => Rune.IsWhiteSpace(rune) || rune.Value is >= 0x1C and <= 0x1F;
}
