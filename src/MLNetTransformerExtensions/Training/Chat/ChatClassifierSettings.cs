using System.Globalization;
using System.Text.Json.Nodes;

namespace MLNetTransformerExtensions.Training;

/// <summary>What a chat classifier does with a reply that names no label (after tolerant parsing), or a row whose requests all failed.</summary>
public enum ChatUnparsedPolicy
{
    /// <summary>
    /// The row gets the uniform distribution (every class 1/K; <c>PredictedLabel</c> is then the first class) and is
    /// counted as unparsed (or failed) in <see cref="ChatClassifierUsage"/>; scoring goes on.
    /// </summary>
    Uniform,

    /// <summary>Scoring stops with an <see cref="InvalidOperationException"/> naming the row and the reply.</summary>
    Throw,
}

/// <summary>
/// The settings of a chat classifier that are saved with it: the prompt, the chat options and the production limits.
/// Never the client, its endpoint or its key.
/// </summary>
internal sealed record ChatClassifierSettings
{
    public string ModelId { get; init; } = "";

    public string? Instructions { get; init; }

    public IReadOnlyDictionary<string, string>? LabelDescriptions { get; init; }

    public float Temperature { get; init; }

    public int MaximumOutputTokens { get; init; } = 50;

    public bool StructuredOutput { get; init; } = true;

    public int TopLogProbabilities { get; init; } = 5;

    public int MaximumConcurrency { get; init; } = 8;

    public long? MaximumRequests { get; init; }

    public long? MaximumTokens { get; init; }

    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(60);

    public int MaximumRetries { get; init; } = 4;

    public TimeSpan RetryBaseDelay { get; init; } = TimeSpan.FromSeconds(1);

    public TimeSpan MaximumRetryDelay { get; init; } = TimeSpan.FromSeconds(60);

    public ChatUnparsedPolicy UnparsedPolicy { get; init; }

    /// <summary>Checks every value, naming the option in the message.</summary>
    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(ModelId))
        {
            throw new ArgumentException("ModelId must name the chat model (for example 'gpt-4o-mini', or 'llama3.2' on Ollama).", "options");
        }

        Positive(MaximumOutputTokens, nameof(MaximumOutputTokens));
        Positive(MaximumConcurrency, nameof(MaximumConcurrency));
        if (TopLogProbabilities is < 0 or > 20)
        {
            throw new ArgumentOutOfRangeException("options", TopLogProbabilities, "TopLogProbabilities must be 0 (do not ask) to 20 (OpenAI's limit).");
        }

        if (Temperature < 0 || float.IsNaN(Temperature))
        {
            throw new ArgumentOutOfRangeException("options", Temperature, "Temperature must be 0 or more.");
        }

        if (MaximumRequests is <= 0 || MaximumTokens is <= 0)
        {
            throw new ArgumentOutOfRangeException("options", "MaximumRequests and MaximumTokens must be positive, or null for no limit.");
        }

        if (RequestTimeout <= TimeSpan.Zero || RetryBaseDelay < TimeSpan.Zero || MaximumRetryDelay < TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException("options", "RequestTimeout must be positive; RetryBaseDelay and MaximumRetryDelay 0 or more.");
        }

        if (MaximumRetries < 0)
        {
            throw new ArgumentOutOfRangeException("options", MaximumRetries, "MaximumRetries must be 0 or more.");
        }

        if (!Enum.IsDefined(UnparsedPolicy))
        {
            throw new ArgumentOutOfRangeException("options", UnparsedPolicy, "UnparsedPolicy must be Uniform or Throw.");
        }
    }

    public JsonObject ToJson() => new()
    {
        ["model_id"] = ModelId,
        ["instructions"] = Instructions,
        ["label_descriptions"] = LabelDescriptions is null ? null : new JsonObject(LabelDescriptions.Select(d => KeyValuePair.Create(d.Key, (JsonNode?)d.Value))),
        ["temperature"] = Temperature,
        ["max_output_tokens"] = MaximumOutputTokens,
        ["structured_output"] = StructuredOutput,
        ["top_logprobs"] = TopLogProbabilities,
        ["max_concurrency"] = MaximumConcurrency,
        ["max_requests"] = MaximumRequests,
        ["max_tokens"] = MaximumTokens,
        ["request_timeout_seconds"] = RequestTimeout.TotalSeconds,
        ["max_retries"] = MaximumRetries,
        ["retry_base_delay_seconds"] = RetryBaseDelay.TotalSeconds,
        ["max_retry_delay_seconds"] = MaximumRetryDelay.TotalSeconds,
        ["unparsed_policy"] = UnparsedPolicy.ToString().ToLowerInvariant(),
    };

    public static ChatClassifierSettings FromJson(JsonObject json) => new()
    {
        ModelId = json["model_id"]!.GetValue<string>(),
        Instructions = json["instructions"]?.GetValue<string>(),
        LabelDescriptions = json["label_descriptions"]?.AsObject().ToDictionary(p => p.Key, p => p.Value!.GetValue<string>()),
        Temperature = json["temperature"]!.GetValue<float>(),
        MaximumOutputTokens = json["max_output_tokens"]!.GetValue<int>(),
        StructuredOutput = json["structured_output"]!.GetValue<bool>(),
        TopLogProbabilities = json["top_logprobs"]!.GetValue<int>(),
        MaximumConcurrency = json["max_concurrency"]!.GetValue<int>(),
        MaximumRequests = json["max_requests"]?.GetValue<long>(),
        MaximumTokens = json["max_tokens"]?.GetValue<long>(),
        RequestTimeout = TimeSpan.FromSeconds(json["request_timeout_seconds"]!.GetValue<double>()),
        MaximumRetries = json["max_retries"]!.GetValue<int>(),
        RetryBaseDelay = TimeSpan.FromSeconds(json["retry_base_delay_seconds"]!.GetValue<double>()),
        MaximumRetryDelay = TimeSpan.FromSeconds(json["max_retry_delay_seconds"]!.GetValue<double>()),
        UnparsedPolicy = Enum.Parse<ChatUnparsedPolicy>(json["unparsed_policy"]!.GetValue<string>(), ignoreCase: true),
    };

    private static void Positive(int value, string name)
    {
        if (value <= 0)
        {
            throw new ArgumentOutOfRangeException("options", value, string.Create(CultureInfo.InvariantCulture, $"{name} must be positive."));
        }
    }
}
