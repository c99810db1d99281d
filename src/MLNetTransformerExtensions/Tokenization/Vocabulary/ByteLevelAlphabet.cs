namespace MLNetTransformerExtensions.Tokenization.Vocabulary;

/// <summary>
/// GPT-2's byte-to-unicode table (<c>bytes_to_unicode</c> in openai/gpt-2 and transformers): the printable bytes
/// <c>!</c>–<c>~</c>, <c>¡</c>–<c>¬</c> and <c>®</c>–<c>ÿ</c> stand for themselves, and the other 68 bytes (space, controls,
/// ...) take U+0100 onwards in byte order, so space is <c>Ġ</c> and newline <c>Ċ</c>. Vocabulary files spell byte-level
/// tokens with these characters; Microsoft.ML.Tokenizers' <c>ByteLevel</c> option reads them the same way.
/// </summary>
internal static class ByteLevelAlphabet
{
    /// <summary>The character standing for each byte.</summary>
    public static IReadOnlyList<char> CharOfByte { get; } = Build();

    private static char[] Build()
    {
        var table = new char[256];
        var next = 256;
        for (var b = 0; b < 256; b++)
        {
            var printable = b is (>= '!' and <= '~') or (>= 0xA1 and <= 0xAC) or (>= 0xAE and <= 0xFF);
            table[b] = printable ? (char)b : (char)next++;
        }

        return table;
    }
}
