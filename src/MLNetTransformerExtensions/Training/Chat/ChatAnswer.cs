using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.AI;

namespace MLNetTransformerExtensions.Training;

/// <summary>One generated token with its log-probability and the most likely alternatives at its position.</summary>
internal sealed record ChatToken(string Token, double LogProbability, IReadOnlyList<KeyValuePair<string, double>> Top);

/// <summary>
/// What a chat model answered to one request, as much as scoring and accounting need, and what the response cache
/// keeps: the reply text, the token log-probabilities when the service returned them, and the token usage.
/// </summary>
internal sealed record ChatReply(string Text, IReadOnlyList<ChatToken>? Tokens, long PromptTokens, long CompletionTokens)
{
    /// <summary>
    /// Reads a response. Log-probabilities are not part of <c>Microsoft.Extensions.AI</c>'s abstraction: they are read
    /// from the OpenAI client's raw completion when there is one, and are absent for other clients.
    /// </summary>
    public static ChatReply From(ChatResponse response)
    {
        IReadOnlyList<ChatToken>? tokens = null;
        if (response.RawRepresentation is OpenAI.Chat.ChatCompletion { ContentTokenLogProbabilities: { Count: > 0 } logProbabilities })
        {
            tokens = [.. logProbabilities.Select(t => new ChatToken(t.Token, t.LogProbability,
                [.. t.TopLogProbabilities.Select(a => KeyValuePair.Create(a.Token, (double)a.LogProbability))]))];
        }

        return new ChatReply(response.Text, tokens, response.Usage?.InputTokenCount ?? 0, response.Usage?.OutputTokenCount ?? 0);
    }

    public JsonObject ToJson() => new()
    {
        ["text"] = Text,
        ["prompt_tokens"] = PromptTokens,
        ["completion_tokens"] = CompletionTokens,
        ["tokens"] = Tokens is null ? null : new JsonArray([.. Tokens.Select(t => (JsonNode)new JsonObject
        {
            ["token"] = t.Token,
            ["logprob"] = t.LogProbability,
            ["top"] = new JsonArray([.. t.Top.Select(a => (JsonNode)new JsonObject { ["token"] = a.Key, ["logprob"] = a.Value })]),
        })]),
    };

    public static ChatReply FromJson(JsonObject json) => new(
        json["text"]!.GetValue<string>(),
        json["tokens"]?.AsArray().Select(t => new ChatToken(t!["token"]!.GetValue<string>(), t["logprob"]!.GetValue<double>(),
            [.. t["top"]!.AsArray().Select(a => KeyValuePair.Create(a!["token"]!.GetValue<string>(), a["logprob"]!.GetValue<double>()))])).ToList(),
        json["prompt_tokens"]!.GetValue<long>(),
        json["completion_tokens"]!.GetValue<long>());
}

/// <summary>
/// Turns a reply into class probabilities: the label it names (read tolerantly), and the distribution over the labels
/// from the log-probabilities of the label's first token where the service returned them, else one-hot.
/// </summary>
internal static class ChatAnswer
{
    private static readonly char[] s_trimmed = [' ', '\t', '\r', '\n', '"', '\'', '`', '.'];

    /// <summary>The class the reply names, or -1 when it names none; and where in the text the label starts.</summary>
    public static (int Class, int Offset) Parse(string reply, IReadOnlyList<string> labels)
    {
        var (value, offset) = LabelValue(reply);
        var normalized = Normalize(value);
        for (var c = 0; c < labels.Count; c++)
        {
            if (string.Equals(Normalize(labels[c]), normalized, StringComparison.OrdinalIgnoreCase))
            {
                return (c, offset);
            }
        }

        return (-1, offset);
    }

    /// <summary>
    /// Class probabilities for a reply that named class <paramref name="chosen"/>. From the log-probabilities when the
    /// token where the label starts has alternatives that begin exactly one label each (their probabilities, normalised
    /// over the labels); one-hot when there are none, or when they would not make <paramref name="chosen"/> the most
    /// likely class (so <c>PredictedLabel</c> always agrees with the reply).
    /// </summary>
    public static float[] Probabilities(ChatReply reply, int chosen, int offset, IReadOnlyList<string> labels)
    {
        var probabilities = new float[labels.Count];
        probabilities[chosen] = 1;
        if (reply.Tokens is not { Count: > 0 } tokens)
        {
            return probabilities;
        }

        // Find the token covering the label's first character; its text before that character (an opening quote, say)
        // is the prefix every alternative must share.
        var start = 0;
        foreach (var token in tokens)
        {
            var end = start + token.Token.Length;
            if (end > offset)
            {
                var prefix = offset > start ? token.Token[..(offset - start)] : "";
                var mass = new double[labels.Count];
                foreach (var (text, logProbability) in token.Top.Count > 0 ? token.Top : [KeyValuePair.Create(token.Token, token.LogProbability)])
                {
                    if (!text.StartsWith(prefix, StringComparison.Ordinal) || OnlyLabelStartingWith(text[prefix.Length..], labels) is not { } c)
                    {
                        continue;
                    }

                    mass[c] += Math.Exp(logProbability);
                }

                var total = mass.Sum();
                if (total > 0 && mass[chosen] >= mass.Max())
                {
                    for (var c = 0; c < labels.Count; c++)
                    {
                        probabilities[c] = (float)(mass[c] / total);
                    }
                }

                return probabilities;
            }

            start = end;
        }

        return probabilities;
    }

    /// <summary>The label value in a JSON answer (<c>{"label": "..."}</c>), or the whole reply when it is not one.</summary>
    private static (string Value, int Offset) LabelValue(string reply)
    {
        var trimmed = reply.TrimStart();
        if (trimmed.StartsWith('{'))
        {
            try
            {
                if (JsonNode.Parse(trimmed) is JsonObject json && json[ChatPrompt.LabelProperty] is JsonValue value && value.TryGetValue<string>(out var label))
                {
                    // The label's first character: after the property name, its colon and the opening quote.
                    var property = reply.IndexOf($"\"{ChatPrompt.LabelProperty}\"", StringComparison.Ordinal);
                    var quote = property < 0 ? -1 : reply.IndexOf('"', reply.IndexOf(':', property) + 1);
                    return (label, quote < 0 ? 0 : quote + 1);
                }
            }
            catch (JsonException)
            {
                // Not JSON after all: read it as plain text.
            }
        }

        return (reply, reply.Length - reply.TrimStart(s_trimmed).Length);
    }

    /// <summary>Tolerant form of a label: case aside, no surrounding whitespace or quotes and no trailing period.</summary>
    private static string Normalize(string value) => value.Trim(s_trimmed);

    private static int? OnlyLabelStartingWith(string text, IReadOnlyList<string> labels)
    {
        var piece = text.TrimStart();
        if (piece.Length == 0)
        {
            return null;
        }

        int? found = null;
        for (var c = 0; c < labels.Count; c++)
        {
            var label = Normalize(labels[c]);
            // The alternative may be the label's first piece, or the whole label followed by its closing quote.
            if (label.StartsWith(piece, StringComparison.OrdinalIgnoreCase) || piece.StartsWith(label, StringComparison.OrdinalIgnoreCase) && Normalize(piece).Length == label.Length)
            {
                if (found is not null)
                {
                    return null;
                }

                found = c;
            }
        }

        return found;
    }
}
