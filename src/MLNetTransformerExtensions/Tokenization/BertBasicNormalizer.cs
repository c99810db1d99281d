using System.Globalization;
using System.Text;
using Microsoft.ML.Tokenizers;
using static MLNetTransformerExtensions.Tokenization.HuggingFaceCharacterClasses;

namespace MLNetTransformerExtensions.Tokenization;

/// <summary>
/// The character-level half of HuggingFace's <c>BasicTokenizer</c> (tokenization_bert.py) as a
/// Microsoft.ML.Tokenizers normalizer: drop NUL, U+FFFD and control characters, turn whitespace into spaces,
/// put spaces around CJK ideographs, NFC; then lower-case as Python's <c>str.lower</c> does and strip accents
/// (NFD, drop non-spacing marks).
/// </summary>
/// <remarks>
/// The library's own <c>BertTokenizer</c> differs from HuggingFace on inputs our fixtures cover: it deletes tabs
/// and newlines (as control characters, gluing the words around them) and drops symbols such as <c>&lt;</c>,
/// <c>$</c> and <c>—</c> instead of keeping them as tokens. So we supply the normalizer and the pre-tokenizer
/// and let the library's <see cref="WordPieceTokenizer"/> do the sub-word step.
/// Lower-casing and accent stripping run on the whole text rather than word by word: the result is the same
/// because neither can create or remove whitespace.
/// </remarks>
internal sealed class BertBasicNormalizer : Normalizer
{
    private readonly bool _cleanText;
    private readonly bool _tokenizeChineseChars;
    private readonly bool _lowerCase;
    private readonly bool _stripAccents;

    /// <param name="cleanText">Drop control characters and map whitespace to spaces (<c>_clean_text</c>), then NFC.</param>
    /// <param name="tokenizeChineseChars">Surround CJK ideographs with spaces (<c>tokenize_chinese_chars</c>).</param>
    /// <param name="lowerCase">Lower-case (<c>do_lower_case</c>).</param>
    /// <param name="stripAccents">Remove accents (<c>strip_accents</c>; HuggingFace's default follows <c>do_lower_case</c>).</param>
    public BertBasicNormalizer(bool cleanText, bool tokenizeChineseChars, bool lowerCase, bool stripAccents)
    {
        _cleanText = cleanText;
        _tokenizeChineseChars = tokenizeChineseChars;
        _lowerCase = lowerCase;
        _stripAccents = stripAccents;
    }

    public override string Normalize(string original) => Normalize(original.AsSpan());

    public override string Normalize(ReadOnlySpan<char> original)
    {
        string text;
        if (_cleanText || _tokenizeChineseChars)
        {
            var builder = new StringBuilder(original.Length + 8);
            Span<char> utf16 = stackalloc char[2];
            foreach (var rune in original.EnumerateRunes())
            {
                // EnumerateRunes reports a lone surrogate as U+FFFD, which cleaning drops like HuggingFace does.
                if (_cleanText && (rune.Value is 0 or 0xFFFD || IsBertControl(rune)))
                {
                    continue;
                }

                if (_cleanText && IsBertWhitespace(rune))
                {
                    builder.Append(' ');
                    continue;
                }

                var written = rune.EncodeToUtf16(utf16);
                if (_tokenizeChineseChars && IsCjkIdeograph(rune.Value))
                {
                    builder.Append(' ').Append(utf16[..written]).Append(' ');
                }
                else
                {
                    builder.Append(utf16[..written]);
                }
            }

            text = builder.ToString();
            if (_cleanText)
            {
                text = text.Normalize(NormalizationForm.FormC);
            }
        }
        else
        {
            text = original.ToString();
        }

        if (_lowerCase)
        {
            text = PythonLower(text);
        }

        return _stripAccents ? StripAccents(text) : text;
    }

    /// <summary>
    /// Python's <c>str.lower()</c>: Unicode's simple lower-case mapping (what <c>ToLowerInvariant</c> does) plus the
    /// two rules of SpecialCasing.txt that apply without a language: İ becomes "i̇" and a word-final Σ becomes ς.
    /// </summary>
    internal static string PythonLower(string text)
    {
        if (text.AsSpan().IndexOfAny('\u0130', '\u03A3') < 0)
        {
            return text.ToLowerInvariant();
        }

        var builder = new StringBuilder(text.Length + 4);
        var start = 0;
        for (var i = 0; i < text.Length; i++)
        {
            if (text[i] is not ('\u0130' or '\u03A3'))
            {
                continue;
            }

            builder.Append(text[start..i].ToLowerInvariant());
            builder.Append(text[i] == '\u0130' ? "i\u0307" : IsFinalSigma(text, i) ? "\u03C2" : "\u03C3");
            start = i + 1;
        }

        builder.Append(text[start..].ToLowerInvariant());
        return builder.ToString();
    }

    // Unicode's Final_Sigma condition: a cased letter before (skipping case-ignorable characters), none after.
    private static bool IsFinalSigma(string text, int index)
    {
        var before = index - 1;
        while (before >= 0 && IsCaseIgnorable(text[before]))
        {
            before--;
        }

        if (before < 0 || !IsCased(text[before]))
        {
            return false;
        }

        var after = index + 1;
        while (after < text.Length && IsCaseIgnorable(text[after]))
        {
            after++;
        }

        return after == text.Length || !IsCased(text[after]);
    }

    private static bool IsCased(char c) =>
        char.GetUnicodeCategory(c) is UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter;

    private static bool IsCaseIgnorable(char c) =>
        c is '\'' or '.' or ':' or '\u00B7' or '\u2018' or '\u2019' or '\u2024' or '\u2027'
        || char.GetUnicodeCategory(c) is UnicodeCategory.NonSpacingMark or UnicodeCategory.EnclosingMark
            or UnicodeCategory.Format or UnicodeCategory.ModifierLetter or UnicodeCategory.ModifierSymbol;

    /// <summary><c>_run_strip_accents</c>: NFD, then drop every non-spacing mark (Mn). The result is left decomposed, as in HuggingFace.</summary>
    internal static string StripAccents(string text)
    {
        var decomposed = text.Normalize(NormalizationForm.FormD);
        var builder = new StringBuilder(decomposed.Length);
        Span<char> utf16 = stackalloc char[2];
        foreach (var rune in decomposed.EnumerateRunes())
        {
            if (Rune.GetUnicodeCategory(rune) != UnicodeCategory.NonSpacingMark)
            {
                builder.Append(utf16[..rune.EncodeToUtf16(utf16)]);
            }
        }

        return builder.ToString();
    }
}
