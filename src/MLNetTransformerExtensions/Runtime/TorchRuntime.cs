using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using TorchSharp;

namespace MLNetTransformerExtensions.Runtime;

/// <summary>How the TorchSharp native glue library was loaded.</summary>
public enum NativeCompatibilityFix
{
    /// <summary>The original library loaded as shipped; nothing was patched.</summary>
    NotNeeded,

    /// <summary>The system's libstdc++ predates GCC 13: a private, patched copy of the glue library was loaded.</summary>
    Applied,

    /// <summary>Not Linux: TorchSharp loads its natives itself.</summary>
    NotApplicable,
}

/// <summary>What <see cref="TorchRuntime.EnsureInitialized"/> found and did.</summary>
/// <param name="Fix">Whether the compatibility fix for older libstdc++ was applied.</param>
/// <param name="OriginalLibrary">The glue library TorchSharp ships, as found on disk (null off Linux).</param>
/// <param name="LoadedLibrary">The file actually loaded (the patched copy when the fix was applied).</param>
/// <param name="TorchSharpVersion">TorchSharp's assembly version.</param>
/// <param name="LibTorchVersion">The libtorch version TorchSharp was built against.</param>
public sealed record TorchRuntimeStatus(
    NativeCompatibilityFix Fix,
    string? OriginalLibrary,
    string? LoadedLibrary,
    string TorchSharpVersion,
    string LibTorchVersion);

/// <summary>The error raised when libtorch cannot be loaded; its message says what is wrong and what to do.</summary>
public sealed class TorchRuntimeException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">What is wrong and what to do.</param>
    /// <param name="inner">The underlying error, if any.</param>
    public TorchRuntimeException(string message, Exception? inner = null) : base(message, inner)
    {
    }
}

/// <summary>
/// Loads TorchSharp's native runtime on every Linux, including those whose libstdc++ predates GCC 13
/// (Debian 12, Ubuntu 22.04, RHEL 9), where TorchSharp 0.107's glue library fails to load because it
/// records a need for GLIBCXX_3.4.32.
/// </summary>
/// <remarks>
/// The original library is tried first; only when the dynamic linker rejects it for that version is a copy,
/// with the one requirement marked weak, written to a private cache folder (never into the NuGet cache)
/// and loaded in its place. A DllImport resolver registered when this assembly loads hands the loaded
/// library to TorchSharp, so applications, test hosts and notebooks all get the fix with no build step.
/// </remarks>
public static class TorchRuntime
{
    private const string GlueName = "LibTorchSharp";
    private const string GlueFile = "libLibTorchSharp.so";
    private const string MissingVersion = "GLIBCXX_3.4.32";
    private static readonly string[] LibTorchFiles = ["libc10.so", "libtorch_cpu.so", "libtorch.so"];

    private static readonly Lock Gate = new();
    private static TorchRuntimeStatus? status;
    private static IntPtr glueHandle;
    private static (NativeCompatibilityFix Fix, string Original, string Loaded)? preloaded;
    private static Exception? failure;

    /// <summary>The runtime's state, initialising it first if needed.</summary>
    public static TorchRuntimeStatus Status => EnsureInitialized();

    /// <summary>
    /// Loads libtorch and TorchSharp's glue library, applying the compatibility fix where the system needs it.
    /// Safe to call many times and from many threads; every entry point of this library calls it.
    /// </summary>
    /// <returns>What was found and done.</returns>
    /// <exception cref="TorchRuntimeException">The native runtime cannot be loaded; the message says why and what to do.</exception>
    public static TorchRuntimeStatus EnsureInitialized()
    {
        if (status is not null)
        {
            return status;
        }

        lock (Gate)
        {
            if (status is not null)
            {
                return status;
            }

            if (failure is not null)
            {
                throw new TorchRuntimeException(failure.Message, failure);
            }

            try
            {
                var fix = NativeCompatibilityFix.NotApplicable;
                string? original = null, loaded = null;
                if (OperatingSystem.IsLinux())
                {
                    (fix, original, loaded) = preloaded ?? LoadGlueOnLinux();
                }

                torch.InitializeDeviceType(DeviceType.CPU);
                status = new TorchRuntimeStatus(fix, original, loaded, TorchSharpVersion(), LibTorchVersion());
                return status;
            }
            catch (Exception e)
            {
                failure = e as TorchRuntimeException ?? new TorchRuntimeException(
                    $"TorchSharp's native runtime failed to initialise: {e.Message}. " +
                    "Check that the TorchSharp-cpu package restored completely (delete its folders from the NuGet cache and restore again).", e);
                throw failure;
            }
        }
    }

    // Runs when this assembly is first used, before any TorchSharp call this library makes — and before a caller's own
    // TorchSharp calls, which would otherwise fail: TorchSharp's first load of its glue library does not consult
    // DllImport resolvers, so the (patched) glue must already be loaded by then. Failures are kept, not thrown, and
    // surface with their explanation from EnsureInitialized.
#pragma warning disable CA2255 // a library module initializer is the point here
    [ModuleInitializer]
#pragma warning restore CA2255
    internal static void RegisterResolver()
    {
        try
        {
            NativeLibrary.SetDllImportResolver(typeof(torch).Assembly, Resolve);
        }
        catch (InvalidOperationException)
        {
            // The host already resolves TorchSharp's natives itself; the glue library is then found by its soname.
        }

        if (OperatingSystem.IsLinux())
        {
            lock (Gate)
            {
                try
                {
                    preloaded = LoadGlueOnLinux();
                }
                catch (TorchRuntimeException e)
                {
                    failure = e;
                }
            }
        }
    }

    private static IntPtr Resolve(string name, Assembly assembly, DllImportSearchPath? searchPath)
    {
        if (name != GlueName || !OperatingSystem.IsLinux())
        {
            return IntPtr.Zero;
        }

        if (glueHandle == IntPtr.Zero && status is null && failure is null)
        {
            // TorchSharp was used before any of our entry points: initialise on its first native call.
            lock (Gate)
            {
                if (glueHandle == IntPtr.Zero && failure is null)
                {
                    try
                    {
                        LoadGlueOnLinux();
                    }
                    catch (TorchRuntimeException e)
                    {
                        failure = e;
                        throw;
                    }
                }
            }
        }

        return glueHandle;
    }

    private static (NativeCompatibilityFix Fix, string Original, string Loaded) LoadGlueOnLinux()
    {
        var original = FindGlueLibrary();
        var libTorchDir = FindLibTorchDirectory(Path.GetDirectoryName(original)!);
        if (glueHandle != IntPtr.Zero)
        {
            return (NativeCompatibilityFix.NotNeeded, original, original);
        }

        // libtorch first: in the NuGet cache (a notebook's #r "nuget: ...", a script) it sits in another package's folder
        // than the glue, where the loader would not find it by its soname.
        foreach (var file in LibTorchFiles)
        {
            var path = Path.Combine(libTorchDir, file);
            try
            {
                NativeLibrary.Load(path);
            }
            catch (DllNotFoundException e)
            {
                throw new TorchRuntimeException($"libtorch's '{path}' could not be loaded: {e.Message}. Restore the TorchSharp-cpu package again.", e);
            }
        }

        try
        {
            glueHandle = NativeLibrary.Load(original);
            return (NativeCompatibilityFix.NotNeeded, original, original);
        }
        catch (DllNotFoundException e) when (e.Message.Contains(MissingVersion, StringComparison.Ordinal) || e.Message.Contains("GLIBCXX", StringComparison.Ordinal))
        {
            // The system's libstdc++ lacks GLIBCXX_3.4.32: load a patched copy of the glue.
        }
        catch (DllNotFoundException e)
        {
            throw new TorchRuntimeException(
                $"TorchSharp's native library '{original}' could not be loaded: {e.Message}. " +
                "Restore the TorchSharp-cpu package again (delete its folders from the NuGet cache first); on Linux, libtorch needs x86-64 glibc 2.28 or newer.", e);
        }

        var patched = PatchedCopy(original);
        try
        {
            glueHandle = NativeLibrary.Load(patched);
        }
        catch (DllNotFoundException e)
        {
            throw new TorchRuntimeException(
                $"The patched copy '{patched}' of TorchSharp's glue library could not be loaded: {e.Message}. " +
                "This system's C++ runtime is older than TorchSharp supports even with the fix; install a libstdc++ from GCC 12 or newer, or use a newer Linux distribution.", e);
        }

        return (NativeCompatibilityFix.Applied, original, patched);
    }

    /// <summary>Writes (once per original, keyed on its SHA-256) a copy whose GLIBCXX_3.4.32 need is weak.</summary>
    private static string PatchedCopy(string original)
    {
        var bytes = File.ReadAllBytes(original);
        var hash = Convert.ToHexStringLower(SHA256.HashData(bytes))[..16];
        var folder = Path.Combine(CacheRoot(), "native", hash);
        var target = Path.Combine(folder, GlueFile);
        if (File.Exists(target) && new FileInfo(target).Length == bytes.Length)
        {
            var existing = File.ReadAllBytes(target);
            if (ElfVersionNeeds.Weaken(existing, MissingVersion, target) == ElfWeakenResult.AlreadyWeak)
            {
                return target;
            }
        }

        if (ElfVersionNeeds.Weaken(bytes, MissingVersion, original) == ElfWeakenResult.NotRequired)
        {
            throw new TorchRuntimeException(
                $"'{original}' failed to load for want of a GLIBCXX version, but it does not require {MissingVersion}: this TorchSharp build needs a newer libstdc++ than the fix can work around. " +
                "Use a Linux distribution with GCC 13's libstdc++ or newer (Ubuntu 24.04, Debian 13, Fedora 39).");
        }

        Directory.CreateDirectory(folder);
        var temporary = Path.Combine(folder, $".{GlueFile}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        File.WriteAllBytes(temporary, bytes);
        try
        {
            // Atomic: another process may be writing the same copy; either file is identical.
            File.Move(temporary, target, overwrite: true);
        }
        finally
        {
            if (File.Exists(temporary))
            {
                File.Delete(temporary);
            }
        }

        return target;
    }

    /// <summary>The library's own cache folder: <c>$XDG_CACHE_HOME/MLNetTransformerExtensions</c>, else <c>~/.cache/MLNetTransformerExtensions</c>.</summary>
    internal static string CacheRoot()
    {
        var xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        var root = !string.IsNullOrEmpty(xdg) ? xdg
            : !string.IsNullOrEmpty(home) ? Path.Combine(home, ".cache")
            : Path.GetTempPath();
        return Path.Combine(root, "MLNetTransformerExtensions");
    }

    private static string FindGlueLibrary()
    {
        var searched = new List<string>();
        foreach (var dir in CandidateDirectories())
        {
            var path = Path.Combine(dir, GlueFile);
            searched.Add(dir);
            if (File.Exists(path))
            {
                return path;
            }
        }

        throw new TorchRuntimeException(
            $"TorchSharp's native library {GlueFile} was not found. Looked in: {string.Join(", ", searched.Distinct())}. " +
            "Reference the TorchSharp-cpu package (it comes with MLNetTransformerExtensions) and restore again.");
    }

    /// <summary>libtorch sits beside the glue in an app's output; in the NuGet cache it has its own package.</summary>
    private static string FindLibTorchDirectory(string glueDirectory)
    {
        if (File.Exists(Path.Combine(glueDirectory, "libtorch_cpu.so")))
        {
            return glueDirectory;
        }

        foreach (var packages in PackageRoots())
        {
            var package = Path.Combine(packages, "libtorch-cpu-linux-x64");
            if (!Directory.Exists(package))
            {
                continue;
            }

            var match = Directory.GetDirectories(package)
                .Select(v => Path.Combine(v, "runtimes", "linux-x64", "native"))
                .Where(d => File.Exists(Path.Combine(d, "libtorch_cpu.so")))
                .OrderByDescending(d => d, StringComparer.Ordinal)
                .FirstOrDefault();
            if (match is not null)
            {
                return match;
            }
        }

        throw new TorchRuntimeException(
            $"libtorch (libtorch_cpu.so) was not found next to '{glueDirectory}' nor in the NuGet cache's libtorch-cpu-linux-x64 package. Restore the TorchSharp-cpu package again.");
    }

    private static IEnumerable<string> CandidateDirectories()
    {
        if (AppContext.GetData("NATIVE_DLL_SEARCH_DIRECTORIES") is string probing)
        {
            foreach (var dir in probing.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
            {
                yield return dir;
            }
        }

        var rid = Path.Combine("runtimes", "linux-x64", "native");
        yield return AppContext.BaseDirectory;
        yield return Path.Combine(AppContext.BaseDirectory, rid);
        var torchSharp = Path.GetDirectoryName(typeof(torch).Assembly.Location);
        if (!string.IsNullOrEmpty(torchSharp))
        {
            yield return torchSharp;
            yield return Path.Combine(torchSharp, rid);
            // The NuGet cache's layout: torchsharp/<version>/lib/<tfm>/TorchSharp.dll beside runtimes/.
            yield return Path.GetFullPath(Path.Combine(torchSharp, "..", "..", rid));
        }
    }

    private static IEnumerable<string> PackageRoots()
    {
        var torchSharp = Path.GetDirectoryName(typeof(torch).Assembly.Location);
        if (!string.IsNullOrEmpty(torchSharp))
        {
            yield return Path.GetFullPath(Path.Combine(torchSharp, "..", "..", "..", ".."));
        }

        var configured = Environment.GetEnvironmentVariable("NUGET_PACKAGES");
        if (!string.IsNullOrEmpty(configured))
        {
            yield return configured;
        }

        yield return Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
    }

    private static string TorchSharpVersion() =>
        typeof(torch).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0]
        ?? typeof(torch).Assembly.GetName().Version?.ToString() ?? "unknown";

    private static string LibTorchVersion() => torch.__version__;
}
