using System.Text.Json;

namespace MLNetTransformerExtensions.Tests.Tokenization;

/// <summary>The HuggingFace fixture folders and their expected.json, read with System.Text.Json.</summary>
internal static class TokenizerFixtures
{
    public static string Folder(string set, string model) => Path.Combine(AppContext.BaseDirectory, "Fixtures", set, model);

    public static JsonElement Expected(string set, string model)
    {
        using var document = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(Folder(set, model), "expected.json")));
        return document.RootElement.Clone();
    }

    public static IEnumerable<FixtureCase> Cases(JsonElement expected)
    {
        var index = 0;
        foreach (var c in expected.GetProperty("cases").EnumerateArray())
        {
            yield return new FixtureCase(
                index++,
                c.GetProperty("text").GetString()!,
                c.TryGetProperty("text_pair", out var pair) && pair.ValueKind == JsonValueKind.String ? pair.GetString() : null,
                c.GetProperty("truncated").GetBoolean(),
                Strings(c.GetProperty("tokens")),
                Ints(c.GetProperty("input_ids")),
                c.TryGetProperty("token_type_ids", out var types) ? Ints(types) : null,
                Ints(c.GetProperty("attention_mask")));
        }
    }

    public static int[] Ints(JsonElement array) => array.EnumerateArray().Select(e => e.GetInt32()).ToArray();

    public static long[] FlatLongs(JsonElement matrix) => matrix.EnumerateArray().SelectMany(row => row.EnumerateArray()).Select(e => e.GetInt64()).ToArray();

    public static string[] Strings(JsonElement array) => array.EnumerateArray().Select(e => e.GetString()!).ToArray();

    public static string TempFolder()
    {
        var folder = Path.Combine(Path.GetTempPath(), "mlnet-tokenizer-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(folder);
        return folder;
    }
}

internal sealed record FixtureCase(
    int Index, string Text, string? TextPair, bool Truncated, string[] Tokens, int[] InputIds, int[]? TokenTypeIds, int[] AttentionMask)
{
    public override string ToString() => $"case {Index} ({Text}{(TextPair is null ? "" : " | " + TextPair)})";
}
