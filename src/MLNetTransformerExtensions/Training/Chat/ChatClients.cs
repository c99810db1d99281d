using System.ClientModel;
using System.ClientModel.Primitives;
using Microsoft.Extensions.AI;
using OpenAI;

namespace MLNetTransformerExtensions.Training;

/// <summary>The chat clients the chat classifier is used with, made the way it needs them.</summary>
public static class ChatClients
{
    /// <summary>The variable the API key is read from when none is given.</summary>
    public const string ApiKeyVariable = "OPENAI_API_KEY";

    /// <summary>The variable the endpoint is read from when none is given (for example <c>http://localhost:11434/v1</c> for Ollama).</summary>
    public const string BaseUrlVariable = "OPENAI_BASE_URL";

    /// <summary>
    /// An <see cref="IChatClient"/> for OpenAI or any OpenAI-compatible server (Azure OpenAI's <c>/openai/v1/</c> endpoint,
    /// Ollama, vLLM, llama.cpp's server, LM Studio), from <c>Microsoft.Extensions.AI.OpenAI</c>.
    /// </summary>
    /// <remarks>
    /// The client's own retries are turned off: the chat classifier retries every transient fault itself (also timeouts
    /// and malformed replies, which the client's policy does not cover), and two layers of retries would multiply.
    /// Local servers ignore the key; when none is given for an explicit endpoint, a stand-in is sent because the
    /// client requires one.
    /// </remarks>
    /// <param name="modelId">The model (on Azure OpenAI: the deployment name).</param>
    /// <param name="endpoint">The base URL, or null for <c>OPENAI_BASE_URL</c>, else OpenAI's own service.</param>
    /// <param name="apiKey">The key, or null for <c>OPENAI_API_KEY</c>.</param>
    /// <returns>The client; dispose it when done.</returns>
    /// <exception cref="InvalidOperationException">No key is given or set and no endpoint either (OpenAI's service needs a key).</exception>
    public static IChatClient CreateOpenAICompatible(string modelId, Uri? endpoint = null, string? apiKey = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(modelId);
        var baseUrl = Environment.GetEnvironmentVariable(BaseUrlVariable);
        endpoint ??= string.IsNullOrWhiteSpace(baseUrl) ? null : new Uri(baseUrl);
        apiKey ??= Environment.GetEnvironmentVariable(ApiKeyVariable);
        if (string.IsNullOrWhiteSpace(apiKey))
        {
            apiKey = endpoint is null
                ? throw new InvalidOperationException($"No API key: set {ApiKeyVariable}, or give an endpoint ({BaseUrlVariable}) of a server that needs none, such as Ollama.")
                : "no-key";
        }

        var options = new OpenAIClientOptions { RetryPolicy = new ClientRetryPolicy(maxRetries: 0) };
        if (endpoint is not null)
        {
            options.Endpoint = endpoint;
        }

        return new OpenAIClient(new ApiKeyCredential(apiKey), options).GetChatClient(modelId).AsIChatClient();
    }
}
