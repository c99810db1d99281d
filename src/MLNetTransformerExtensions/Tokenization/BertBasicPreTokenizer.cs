using System.Text;
using Microsoft.ML.Tokenizers;
using static MLNetTransformerExtensions.Tokenization.HuggingFaceCharacterClasses;

namespace MLNetTransformerExtensions.Tokenization;

/// <summary>
/// The word-level half of HuggingFace's <c>BasicTokenizer</c>: split on whitespace (Python's <c>str.split()</c>),
/// then make every punctuation character a word of its own (<c>_run_split_on_punc</c>). Runs on the text
/// <see cref="BertBasicNormalizer"/> produced; each word then goes through WordPiece.
/// </summary>
internal sealed class BertBasicPreTokenizer : PreTokenizer
{
    private readonly bool _splitOnPunctuation;

    /// <param name="splitOnPunctuation">Split punctuation off words (<c>do_split_on_punc</c>, normally true).</param>
    public BertBasicPreTokenizer(bool splitOnPunctuation) => _splitOnPunctuation = splitOnPunctuation;

    public override IEnumerable<(int Offset, int Length)> PreTokenize(string text) => PreTokenize(text.AsSpan());

    public override IEnumerable<(int Offset, int Length)> PreTokenize(ReadOnlySpan<char> text)
    {
        var words = new List<(int Offset, int Length)>();
        var wordStart = -1;
        var index = 0;
        while (index < text.Length)
        {
            Rune.DecodeFromUtf16(text[index..], out var rune, out var width);
            if (IsPythonWhitespace(rune))
            {
                CloseWord(words, ref wordStart, index);
            }
            else if (_splitOnPunctuation && IsBertPunctuation(rune))
            {
                CloseWord(words, ref wordStart, index);
                words.Add((index, width));
            }
            else if (wordStart < 0)
            {
                wordStart = index;
            }

            index += width;
        }

        CloseWord(words, ref wordStart, text.Length);
        return words;
    }

    private static void CloseWord(List<(int Offset, int Length)> words, ref int wordStart, int end)
    {
        if (wordStart >= 0)
        {
            words.Add((wordStart, end - wordStart));
            wordStart = -1;
        }
    }
}
