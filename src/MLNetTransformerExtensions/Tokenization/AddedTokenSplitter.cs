using static MLNetTransformerExtensions.Tokenization.HuggingFaceCharacterClasses;

namespace MLNetTransformerExtensions.Tokenization;

/// <summary>
/// A token matched atomically in raw text before the model sees it (HuggingFace's added and special tokens).
/// </summary>
/// <param name="Content">The exact text to match (case-sensitive).</param>
/// <param name="Id">Its token id.</param>
/// <param name="LeftStrip">Swallow the whitespace before it (<c>lstrip</c>, e.g. RoBERTa's <c>&lt;mask&gt;</c>).</param>
/// <param name="RightStrip">Swallow the whitespace after it (<c>rstrip</c>).</param>
internal sealed record AddedToken(string Content, int Id, bool LeftStrip, bool RightStrip);

/// <summary>One piece of a split text: either plain text for the model (<see cref="TokenId"/> &lt; 0) or one added token.</summary>
internal readonly record struct TextSegment(int Start, int Length, int TokenId);

/// <summary>
/// Splits text on added tokens the way a HuggingFace slow tokenizer does before tokenizing
/// (<c>PreTrainedTokenizer.tokenize</c>: trie split, then <c>lstrip</c>/<c>rstrip</c> trim the neighbouring text):
/// scanning left to right, the longest token starting at the earliest position wins; plain text that becomes
/// empty after trimming is dropped.
/// </summary>
internal sealed class AddedTokenSplitter
{
    // Candidates by first character, longest first, so the first hit is the longest match at a position.
    private readonly Dictionary<char, AddedToken[]> _byFirstChar;

    public AddedTokenSplitter(IEnumerable<AddedToken> tokens)
    {
        _byFirstChar = tokens
            .Where(t => t.Content.Length > 0)
            .GroupBy(t => t.Content[0])
            .ToDictionary(g => g.Key, g => g.OrderByDescending(t => t.Content.Length).ToArray());
    }

    public void Split(string text, List<TextSegment> segments)
    {
        segments.Clear();
        var textStart = 0;
        var position = 0;
        while (position < text.Length)
        {
            var match = MatchAt(text, position);
            if (match is null)
            {
                position++;
                continue;
            }

            var textEnd = position;
            if (match.LeftStrip)
            {
                while (textEnd > textStart && IsPythonWhitespace(text[textEnd - 1]))
                {
                    textEnd--;
                }
            }

            if (textEnd > textStart)
            {
                segments.Add(new TextSegment(textStart, textEnd - textStart, -1));
            }

            segments.Add(new TextSegment(position, match.Content.Length, match.Id));
            position += match.Content.Length;
            if (match.RightStrip)
            {
                while (position < text.Length && IsPythonWhitespace(text[position]))
                {
                    position++;
                }
            }

            textStart = position;
        }

        if (textStart < text.Length)
        {
            segments.Add(new TextSegment(textStart, text.Length - textStart, -1));
        }
    }

    private AddedToken? MatchAt(string text, int position)
    {
        if (!_byFirstChar.TryGetValue(text[position], out var candidates))
        {
            return null;
        }

        var rest = text.AsSpan(position);
        foreach (var candidate in candidates)
        {
            if (rest.StartsWith(candidate.Content, StringComparison.Ordinal))
            {
                return candidate;
            }
        }

        return null;
    }
}
