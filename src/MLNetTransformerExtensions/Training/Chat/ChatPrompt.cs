using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.AI;

namespace MLNetTransformerExtensions.Training;

/// <summary>
/// What a chat classifier sends for one text: a system message (the instructions, the labels and how to answer), the
/// demonstrations as user/assistant turns, then the text; and the chat options (model, temperature, the JSON-schema
/// answer format with the labels as an enum, token log-probabilities).
/// </summary>
internal sealed class ChatPrompt
{
    /// <summary>The property of the JSON answer that holds the label.</summary>
    public const string LabelProperty = "label";

    private readonly ChatClassifierSettings _settings;
    private readonly string _system;
    private readonly ChatMessage[] _demonstrations;
    private readonly JsonElement _schema;

    public ChatPrompt(ChatClassifierSettings settings, IReadOnlyList<string> labels, IReadOnlyList<Demonstration> demonstrations)
    {
        _settings = settings;
        Labels = labels;
        _system = SystemMessage(settings, labels);
        _demonstrations = [.. demonstrations.SelectMany(d => new[]
        {
            new ChatMessage(ChatRole.User, UserMessage(d.Text, d.SecondText)),
            new ChatMessage(ChatRole.Assistant, Answer(labels[d.Label])),
        })];
        _schema = JsonSerializer.SerializeToElement(new JsonObject
        {
            ["type"] = "object",
            ["properties"] = new JsonObject
            {
                [LabelProperty] = new JsonObject { ["type"] = "string", ["enum"] = new JsonArray([.. labels.Select(l => JsonValue.Create(l))]) },
            },
            ["required"] = new JsonArray(LabelProperty),
            ["additionalProperties"] = false,
        });
    }

    public IReadOnlyList<string> Labels { get; }

    /// <summary>The instructions used when the settings give none: the task, from the label names.</summary>
    public static string DefaultInstructions(IReadOnlyList<string> labels) =>
        $"Classify the text into exactly one of these labels: {string.Join(", ", labels)}.";

    /// <summary>The reply a demonstration shows, and the form the system message asks for.</summary>
    public static string Answer(string label) => new JsonObject { [LabelProperty] = label }.ToJsonString();

    /// <summary>The messages for one text: system, demonstrations, the text.</summary>
    public List<ChatMessage> Messages(string text, string? secondText) =>
        [new ChatMessage(ChatRole.System, _system), .. _demonstrations, new ChatMessage(ChatRole.User, UserMessage(text, secondText))];

    /// <summary>
    /// New chat options for one request (a client may keep a reference, so each request gets its own). The JSON schema
    /// constrains the answer to the labels where the service supports structured output; the log-probabilities are asked
    /// through the OpenAI client's own options, which <c>Microsoft.Extensions.AI</c> does not abstract.
    /// </summary>
    public ChatOptions Options()
    {
        var options = new ChatOptions
        {
            ModelId = _settings.ModelId,
            Temperature = _settings.Temperature,
            MaxOutputTokens = _settings.MaximumOutputTokens,
        };
        if (_settings.StructuredOutput)
        {
            options.ResponseFormat = ChatResponseFormat.ForJsonSchema(_schema, "classification", "The label of the text.");
        }

        if (_settings.TopLogProbabilities > 0)
        {
            var top = _settings.TopLogProbabilities;
            options.RawRepresentationFactory = _ => new OpenAI.Chat.ChatCompletionOptions { IncludeLogProbabilities = true, TopLogProbabilityCount = top };
        }

        return options;
    }

    /// <summary>
    /// The exact request as text, for the response cache's key: the model, every message, and every option that can
    /// change the answer. Never the endpoint or the key, which the prompt does not know.
    /// </summary>
    public string Describe(IReadOnlyList<ChatMessage> messages) => new JsonObject
    {
        ["model"] = _settings.ModelId,
        ["temperature"] = _settings.Temperature,
        ["max_output_tokens"] = _settings.MaximumOutputTokens,
        ["response_format"] = _settings.StructuredOutput ? JsonNode.Parse(_schema.GetRawText()) : null,
        ["top_logprobs"] = _settings.TopLogProbabilities,
        ["messages"] = new JsonArray([.. messages.Select(m => (JsonNode)new JsonObject { ["role"] = m.Role.Value, ["content"] = m.Text })]),
    }.ToJsonString();

    private static string SystemMessage(ChatClassifierSettings settings, IReadOnlyList<string> labels)
    {
        var system = new StringBuilder(settings.Instructions ?? DefaultInstructions(labels)).Append("\n\nLabels:");
        foreach (var label in labels)
        {
            system.Append("\n- ").Append(label);
            if (settings.LabelDescriptions?.GetValueOrDefault(label) is { Length: > 0 } description)
            {
                system.Append(": ").Append(description);
            }
        }

        return system.Append("\n\nReply with only a JSON object of the form ").Append(Answer("<label>")).Append(", using one of the labels exactly as written.").ToString();
    }

    private static string UserMessage(string text, string? secondText) =>
        secondText is null ? text : $"Text 1: {text}\nText 2: {secondText}";
}
